// The quantization policy of a model variant, as plain validated structs.
//
// Filled in by the config reader (config/server_config.h); every struct here
// is complete and consistent once loading succeeds, so the engine does not
// re-apply defaults or inheritance. See docs/POLICY.md for the YAML keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qs {

enum class WeightMethodConfig { kLinear, kLog2, kKMeans, kSign };

struct WeightQuantConfig {
  WeightMethodConfig method = WeightMethodConfig::kLinear;
  // 1..8. sign: exactly 1 (its default); 1 only with sign; log2: >= 2.
  int bits = 8;
  // Linear only; always true for the other methods.
  bool symmetric = true;
  bool per_channel = true;  // one scale per output channel; else per tensor
  bool operator==(const WeightQuantConfig&) const = default;
};

enum class CalibrationConfig { kMinMax, kPercentile, kMse, kKl };

struct ActivationQuantConfig {
  int bits = 8;  // 2..8
  CalibrationConfig calibration = CalibrationConfig::kMinMax;
  // (50, 100]. Used only by kPercentile (setting it for another calibration
  // is a config error); 99.99 otherwise.
  double percentile = 99.99;
  bool operator==(const ActivationQuantConfig&) const = default;
};

enum class OptimizerConfig { kGd, kSgd, kAdam };
enum class LossConfig { kMse, kCrossEntropy };

struct OptimizeConfig {
  OptimizerConfig algorithm = OptimizerConfig::kAdam;
  LossConfig loss = LossConfig::kMse;
  // YAML `learn: [rounding, scales]`: at least one is true.
  bool learn_rounding = true;
  bool learn_scales = false;
  int iterations = 300;         // 1..100000
  double learning_rate = 1e-2;  // (0, 10]
  int batch_size = 64;          // 1..4096; ignored by kGd (whole calib. set)
  uint32_t seed = 0;
  bool operator==(const OptimizeConfig&) const = default;
};

struct LayerOverrideConfig {
  // At least one of op/name is non-empty; a layer matches when both given
  // ones match (see MatchesLayer).
  std::string op;    // ONNX op type, exact and case-sensitive; "" = any
  std::string name;  // node-name glob (* ? [...] [!...], \ escapes); "" = any
  // fp32 == true: the matched layers stay in fp32; weights and activations
  // are then nullopt. fp32 == false: both are set and complete, with every
  // field the override did not give inherited from the variant.
  bool fp32 = false;
  std::optional<WeightQuantConfig> weights = std::nullopt;
  std::optional<ActivationQuantConfig> activations = std::nullopt;
  // "<file>:<line>:<col>: models[0].variants[2].layers[1]", for engine
  // errors such as "pattern matches nothing".
  std::string location = {};
  bool operator==(const LayerOverrideConfig&) const = default;
};

struct AutoBitsConfig {
  // Largest allowed drop in top-1 accuracy, in percentage points (0.5 = half
  // a percent); (0, 100].
  double max_accuracy_drop = 0.5;
  // Strictly ascending, each 1..8; 1 means 1-bit sign quantization, the other
  // widths use the variant's weight method.
  std::vector<int> candidate_bits = {2, 4, 8};
  bool operator==(const AutoBitsConfig&) const = default;
};

// How a quantized variant stores ai.onnx.ml tree ensembles (YAML `trees:`).
struct TreesConfig {
  // Split thresholds and input features as per-feature bin codes: 8 or 16.
  int threshold_bits = 16;
  // Leaf values: 8 or 16 (integers with one scale per class/target) or 32
  // (float, unchanged).
  int leaf_bits = 16;
  bool operator==(const TreesConfig&) const = default;
};

// "linear", "log2", "kmeans", "sign".
// Row-wise quantization of embedding tables (YAML `embeddings: {bits: 8|4}`):
// every Gather of a constant float matrix reads it from a table stored with
// `bits` per value plus an fp16 scale and offset per row.
struct EmbeddingQuantConfig {
  int bits = 8;  // 8 or 4
  bool operator==(const EmbeddingQuantConfig&) const = default;
};

const char* WeightMethodConfigName(WeightMethodConfig method);
// "minmax", "percentile", "mse", "kl".
const char* CalibrationConfigName(CalibrationConfig calibration);
// "gd", "sgd", "adam".
const char* OptimizerConfigName(OptimizerConfig algorithm);
// "mse", "cross_entropy".
const char* LossConfigName(LossConfig loss);

// Whether `layer` selects the node with this op type and name: `op` must
// equal `op_type` (when set) and `name` must glob-match the whole
// `node_name` (when set). `*` and `?` also match '/', so "/conv1/*" matches
// "/conv1/Conv".
bool MatchesLayer(const LayerOverrideConfig& layer,
                  std::string_view op_type, std::string_view node_name);

}  // namespace qs
