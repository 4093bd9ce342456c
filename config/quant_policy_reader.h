// Reads a variant (its name and quantization policy) from YAML; used by
// server_config.cc. Errors follow yaml_reader.h's format. The keys and rules
// are documented in docs/POLICY.md.
#pragma once

#include "absl/status/statusor.h"
#include "config/server_config.h"
#include "config/yaml_reader.h"

namespace qs::config_internal {

// One entry of a model's `variants` list: checks its keys, applies defaults
// and inheritance, and validates every combination. Name uniqueness and the
// model-level rules (calibration data) are the caller's.
absl::StatusOr<VariantConfig> ParseVariant(const YamlReader& reader,
                                           const Value& v);

}  // namespace qs::config_internal
