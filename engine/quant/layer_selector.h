// Matching, kept apart from rewriting: decides which layers of a graph are
// quantized and with what settings. Quantizable layers are Conv with
// constant weights, Gemm with constant B (no transA) and MatMul with a
// constant 2-D right operand.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/quant/policy.h"

namespace qs::quant {

bool IsQuantizableLayer(const Graph& graph, const Node& node);

// One LayerPlan per quantizable layer, in graph order. Overrides apply in
// order (later wins). An override that matches no quantizable layer is an
// error naming its location, the pattern, and the layers that exist.
absl::StatusOr<std::vector<LayerPlan>> SelectLayers(const Graph& graph,
                                                    const QuantPolicy& policy);

}  // namespace qs::quant
