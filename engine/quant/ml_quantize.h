// Quantized variants of models made of ai.onnx.ml ops (matching and
// rewriting for classical ML, apart from the Conv/Gemm path):
// - TreeEnsembleClassifier/Regressor: split thresholds and input features
//   become per-feature bin codes of policy.trees.threshold_bits, leaves
//   integers of policy.trees.leaf_bits (see engine/ml/tree_ensemble.h);
//   no calibration is needed (the bins come from the thresholds).
// - LinearClassifier/Regressor, SVMClassifier/Regressor: weights / support
//   vectors to s8 and inputs to u8 per feature over the ranges seen on the
//   calibration set, run as a oneDNN int8 inner product
//   (engine/ml/dot_engine.h). 8-bit weights and activations only.
// The rewrite sets the kernels' qs_* attributes on the nodes.
#pragma once

#include "absl/status/statusor.h"
#include "engine/compiled_model.h"
#include "engine/data/dataset.h"
#include "engine/quant/policy.h"
#include "engine/quant/quantize_graph.h"

namespace qs::quant {

// Whether the graph has any ai.onnx.ml node (then QuantizeMlGraph applies).
bool HasMlNodes(const Graph& graph);

// `fp32` is the compiled float model; `calibration` is read only when a
// linear or SVM node is present.
absl::StatusOr<QuantizedGraph> QuantizeMlGraph(const CompiledModel& fp32,
                                               const QuantPolicy& policy,
                                               const Dataset* calibration,
                                               int64_t batch_size);

}  // namespace qs::quant
