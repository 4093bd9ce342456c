// A variant's quantization policy as the engine sees it: defaults for the
// whole model plus ordered per-layer overrides (matched by op type and/or
// node-name glob). config/ parses YAML into these via server/config_mapping.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/quant/calibration.h"
#include "engine/quant/weight_quantizer.h"

namespace qs::quant {

struct ActivationPolicy {
  int bits = 8;  // 2..8
  CalibrationMethod calibration = CalibrationMethod::kMinMax;
  double percentile = 99.99;
};

enum class Optimizer { kGd, kSgd, kAdam };
enum class Loss { kMse, kCrossEntropy };
const char* OptimizerName(Optimizer o);
const char* LossName(Loss l);

struct OptimizePolicy {
  Optimizer algorithm = Optimizer::kAdam;
  Loss loss = Loss::kMse;
  bool learn_rounding = true;
  bool learn_scales = false;
  int iterations = 300;
  double learning_rate = 1e-2;
  int batch_size = 64;
  uint32_t seed = 0;
};

struct LayerOverride {
  std::string op;    // "" = any
  std::string name;  // fnmatch glob, "" = any
  bool fp32 = false;
  std::optional<WeightQuantSpec> weights;     // complete (inheritance resolved)
  std::optional<ActivationPolicy> activations;
  std::string location;  // where it was written, for "matches nothing" errors
};

struct AutoBits {
  double max_accuracy_drop = 0.5;  // accuracy points
  std::vector<int> candidate_bits = {2, 4, 8};
};

// Row-wise quantization of embedding tables (quant/quantize_embeddings.h).
struct EmbeddingPolicy {
  int bits = 8;  // 8 or 4
};

// ai.onnx.ml tree ensembles: bin-code width of split thresholds (8/16) and
// leaf value width (8/16 integers, 32 = float).
struct TreePolicy {
  int threshold_bits = 16;
  int leaf_bits = 16;
};

struct QuantPolicy {
  WeightQuantSpec weights;  // max_abs_code is set by the engine from the CPU
  ActivationPolicy activations;
  std::optional<OptimizePolicy> optimize;
  std::vector<LayerOverride> layers;
  std::optional<AutoBits> auto_bits;
  std::optional<EmbeddingPolicy> embeddings;
  // false: only `embeddings` applies; every layer stays fp32 and the variant
  // needs no calibration set.
  bool quantize_layers = true;
  TreePolicy trees;
};

// What one quantizable layer gets after defaults and overrides.
struct LayerPlan {
  std::string node;  // node name
  std::string op;    // Conv, Gemm, MatMul
  bool fp32 = false;
  WeightQuantSpec weights;
  ActivationPolicy activations;
};

}  // namespace qs::quant
