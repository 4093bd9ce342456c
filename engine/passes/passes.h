// Graph rewrites run before compilation, in this order:
//   1. RemoveIdentityOps  — Identity / inference-mode Dropout disappear
//   2. FoldConstants      — nodes whose inputs are all constant are evaluated
//   3. FoldBatchNorm      — BatchNormalization folded into Conv / Gemm weights
//   4. FuseActivations    — Relu / LeakyRelu / Clip become oneDNN post-ops
// Each pass keeps graph outputs' names and the graph's meaning unchanged.
#pragma once

#include "absl/status/status.h"
#include "engine/graph.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace qs {

absl::Status RemoveIdentityOps(Graph& graph);
absl::Status FoldConstants(Graph& graph, const dnnl::engine& engine);
absl::Status FoldBatchNorm(Graph& graph);
absl::Status FuseActivations(Graph& graph);

absl::Status RunDefaultPasses(Graph& graph, const dnnl::engine& engine);

// Helpers shared by the passes.
int CountConsumers(const Graph& graph, const std::string& value);
bool IsGraphOutput(const Graph& graph, const std::string& value);
void RenameInputs(Graph& graph, const std::string& from, const std::string& to);
// Drops initializers no node reads any more.
void RemoveUnusedInitializers(Graph& graph);

}  // namespace qs
