// The server's YAML configuration as plain, validated structs.
//
// Loading either yields a fully validated ServerConfig or an error whose
// message reads `<file>:<line>:<col>: <key.path>: <problem>` (1-based line and
// column). All errors are InvalidArgument, except NotFound for a missing
// config file. See docs/CONFIG.md for every key and docs/POLICY.md for the
// quantization policy (variants, calibration).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/quant_policy_config.h"

namespace qs {

// Evaluation or calibration data.
struct DatasetConfig {
  enum class Format { kIdx, kNpy };
  Format format = Format::kIdx;
  std::string inputs;  // absolute path (relative ones resolve against the
                       // config file's directory); not checked for existence
  std::string labels;  // absolute path; required for evaluation, optional for
                       // calibration ("" when absent)
  float scale = 1.0f / 255.0f;  // float_input = raw * scale + offset
  float offset = 0.0f;
  int64_t limit = 0;  // 0 = all samples; for calibration, the number of
                      // calibration samples
};

// One servable version of a model. A variant with only a name is the fp32
// model. Once loaded, a quantized variant always has both `weights` and
// `activations` (the one not given gets its defaults: 8-bit linear weights,
// 8-bit minmax activations); docs/POLICY.md describes every key.
struct VariantConfig {
  std::string name;  // unique within a model; [A-Za-z0-9_.-]+ (keep it first:
                     // VariantConfig{"fp32"} is used)
  std::optional<WeightQuantConfig> weights = std::nullopt;
  std::optional<ActivationQuantConfig> activations = std::nullopt;
  // Set only on quantized variants.
  std::optional<OptimizeConfig> optimize = std::nullopt;
  // Applied in order; for each layer the last matching override wins. Only on
  // quantized variants.
  std::vector<LayerOverrideConfig> layers = {};
  // Per-layer weight bit widths chosen by search. Implies `weights` (whose
  // `bits` then holds the largest candidate).
  std::optional<AutoBitsConfig> auto_bits = std::nullopt;
  // "<file>:<line>:<col>: models[0].variants[2]" ("" for the implicit fp32
  // variant of a model without `variants`).
  std::string location = {};

  bool quantized() const {
    return weights.has_value() || activations.has_value() ||
           auto_bits.has_value();
  }
};

struct ModelConfig {
  std::string name;             // unique; [A-Za-z0-9_.-]+
  std::string path;             // .onnx file, absolute; exists
  std::string default_variant;  // names one of `variants`
  std::optional<DatasetConfig> evaluation;
  // Samples for activation ranges and optimization; required when any
  // variant is quantized, and must not use the evaluation inputs.
  std::optional<DatasetConfig> calibration;
  std::vector<VariantConfig> variants;  // non-empty; default: {{"fp32"}}
  int64_t eval_batch_size = 64;         // 1..4096
};

struct ServerSection {
  std::string grpc_address = "0.0.0.0:8500";
  std::string metrics_address = "0.0.0.0:9090";
  int worker_threads = 0;    // 0 = number of cores; 0..1024
  int intra_op_threads = 1;  // oneDNN threads per run; 0..1024 (0 = all cores)
  int64_t max_message_bytes = int64_t{64} << 20;  // 1024..2147483647
};

struct ServerConfig {
  std::string source;  // the file (or name) the config came from
  ServerSection server;
  std::vector<ModelConfig> models;  // at least one; unique names
};

const char* DatasetFormatName(DatasetConfig::Format format);  // "idx", "npy"

// Reads and validates the config file at `path`. Relative paths inside it
// resolve against the file's directory.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

// For tests and fuzzing: `source` names the text in errors; relative paths
// resolve against `base_dir` (itself made absolute against the working
// directory when relative).
absl::StatusOr<ServerConfig> ParseServerConfig(const std::string& yaml,
                                               const std::string& source,
                                               const std::string& base_dir);

}  // namespace qs
