// Rewriting, kept apart from matching: turns the selected layers of an
// optimized fp32 graph into quantized layers (QConv / QDense on oneDNN
// int8), with QuantizeLinear at their inputs, then lets int8 codes flow
// between consecutive quantized layers (through MaxPool / Flatten / Reshape)
// by requantizing in the producing layer instead of returning to fp32.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/quant/calibrator.h"
#include "engine/quant/policy.h"

namespace qs::quant {

struct LayerReport {
  std::string name, op;
  bool quantized = false;
  std::string reason;  // why a layer stayed fp32 ("policy", "grouped conv", …)
  int weight_bits = 32;
  std::string method = "fp32";
  int activation_bits = 32;
  std::string calibration;
  float act_lo = 0, act_hi = 0;
  int64_t weight_bytes = 0;      // storage: packed codes + scales (+ codebooks) + bias
  double grid_mapping_mse = 0;   // log2/kmeans levels mapped onto the int8 grid
  std::string optimizer;         // "" when not optimized
  double loss_rtn = 0, loss_optimized = 0;
  // Filled after compilation from the oneDNN primitive that runs the layer.
  std::string src_dt, wei_dt, dst_dt, impl;
};

struct QuantizedGraph {
  Graph graph;
  std::vector<LayerReport> layers;
  int64_t weight_bytes = 0;  // whole model, as stored
};

absl::StatusOr<QuantizedGraph> QuantizeGraph(const Graph& fp32, const std::vector<LayerPlan>& plans,
                                             const CalibrationStats& stats,
                                             const std::optional<OptimizePolicy>& optimize);

}  // namespace qs::quant
