// Overrides of config values from --set arguments and the environment
// (ConfigOverrides in config/server_config.h), resolved against the parsed
// document before it is validated. MapReader applies the result (see
// OverrideValue in config/yaml_reader.h), so overridden values get the same
// checks, and their errors name the override instead of a file position.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/server_config.h"
#include "config/yaml_reader.h"

namespace qs::config_internal {

// The environment variables that override config keys, in precedence order.
struct EnvOverride {
  const char* variable;  // "QUANTSERVE_GRPC_ADDRESS"
  const char* key;       // "server.grpc_address"
};
const std::vector<EnvOverride>& EnvOverrides();

// The overrides of `root` (the whole document): first the environment
// variables (literal strings; empty ones ignored), then the --set arguments
// in order. Fails, naming the override, for a malformed --set argument, a
// list item that does not exist (models.<name> naming no model), or a path
// that ends at a list item. Keys themselves are checked when the maps holding
// them are read.
absl::StatusOr<std::vector<OverrideValue>> ResolveOverrides(
    const Value& root, const ConfigOverrides& overrides);

// A --set value as one YAML scalar; see ConfigOverrides::set.
YAML::Node ParseSetValue(const std::string& text);

}  // namespace qs::config_internal
