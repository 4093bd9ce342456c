// Arbitrary bytes as the server's YAML config: ParseServerConfig, which also
// reads every variant's quantization policy (config/quant_policy_config.cc,
// reached through `variants:`) and applies --set / environment overrides.
//
// Overrides come from the input itself, as YAML comment lines (so the
// document parses the same with or without them):
//   #set models.m.batching.max_batch_size=4    -> ConfigOverrides::set
//   #env QUANTSERVE_WORKER_THREADS=abc         -> ConfigOverrides::env
//
// Relative paths resolve against a temporary directory made once, holding
// the files a config may name and that the parser checks exist: m.onnx,
// cert.pem, key.pem, ca.pem (contents are never read as what they claim).
//
// Properties beyond "no crash, no sanitizer report":
//  - every error is INVALID_ARGUMENT with a message that starts with where
//    the problem is: "fuzz.yaml:" or the override's label ("--set ...",
//    "env ...") (config/server_config.h);
//  - a config that loads is complete as documented: at least one model,
//    each with variants, a default variant that names one of them, a
//    quantized variant has both weights and activations, a layer override
//    names op or name, and MatchesLayer works on every layer pattern.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "config/server_config.h"
#include "fuzz_util.h"

namespace {

std::string& BaseDir() {
  static std::string dir;
  return dir;
}

void MakeBaseDir() {
  char tmpl[] = "/tmp/qs_fuzz_config_XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) qs::fuzz::Fail("mkdtemp failed");
  BaseDir() = dir;
  for (const char* name : {"m.onnx", "cert.pem", "key.pem", "ca.pem"}) {
    std::ofstream(std::filesystem::path(dir) / name) << "x\n";
  }
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(BaseDir(), ec);
  });
}

void CheckLoaded(const qs::ServerConfig& config) {
  if (config.models.empty()) qs::fuzz::Fail("a config with no models loaded");
  for (const qs::ModelConfig& m : config.models) {
    if (m.variants.empty()) qs::fuzz::Fail("model '%s' loaded with no variants", m.name.c_str());
    bool found = false;
    for (const qs::VariantConfig& v : m.variants) {
      found = found || v.name == m.default_variant;
      if (v.quantized() && (!v.weights.has_value() || !v.activations.has_value())) {
        qs::fuzz::Fail("quantized variant '%s' loaded without both weights and activations",
                       v.name.c_str());
      }
      for (const qs::LayerOverrideConfig& layer : v.layers) {
        if (layer.op.empty() && layer.name.empty()) {
          qs::fuzz::Fail("a layer override of variant '%s' matches every layer",
                         v.name.c_str());
        }
        if (!layer.fp32 && (!layer.weights.has_value() || !layer.activations.has_value())) {
          qs::fuzz::Fail("a quantized layer override of '%s' is incomplete", v.name.c_str());
        }
        (void)qs::MatchesLayer(layer, "Conv", "/conv1/Conv");
        (void)qs::MatchesLayer(layer, layer.op, layer.name);
      }
    }
    if (!found) {
      qs::fuzz::Fail("model '%s': default_variant '%s' names no variant", m.name.c_str(),
                     m.default_variant.c_str());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  MakeBaseDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  qs::ConfigOverrides overrides;
  for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
    if (absl::ConsumePrefix(&line, "#set ")) {
      overrides.set.emplace_back(line);
    } else if (absl::ConsumePrefix(&line, "#env ")) {
      const size_t eq = line.find('=');
      if (eq != absl::string_view::npos) {
        overrides.env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
      }
    }
  }
  absl::StatusOr<qs::ServerConfig> config =
      qs::ParseServerConfig(yaml, "fuzz.yaml", BaseDir(), overrides);
  if (config.ok()) {
    CheckLoaded(*config);
    return 0;
  }
  const absl::Status& status = config.status();
  qs::fuzz::CheckError(status, "ParseServerConfig");
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    qs::fuzz::Fail("ParseServerConfig: %s, not INVALID_ARGUMENT: %s",
                   absl::StatusCodeToString(status.code()).c_str(),
                   std::string(status.message()).c_str());
  }
  const absl::string_view message = status.message();
  if (!absl::StartsWith(message, "fuzz.yaml:") && !absl::StartsWith(message, "--set ") &&
      !absl::StartsWith(message, "env ")) {
    qs::fuzz::Fail("ParseServerConfig: the error does not say where: %s",
                   std::string(message).c_str());
  }
  return 0;
}
