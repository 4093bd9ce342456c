// Graph rewrites run before compilation, in this order:
//   1. RemoveIdentityOps  — Identity / inference-mode Dropout disappear
//   2. FoldConstants      — nodes whose inputs are all constant are evaluated
//   3. FoldBatchNorm      — BatchNormalization folded into Conv / Gemm weights
//   4. FuseMatMulBias     — MatMul(x, W) + b (a Linear layer) becomes one
//                           MatMul with a bias input (one inner product)
//   5. FuseLayerNorm      — the decomposed ReduceMean/Sub/Pow/ReduceMean/Add/
//                           Sqrt/Div(/Mul/Add) becomes LayerNormalization
//   6. FuseGelu           — x·0.5·(1 + erf(x/√2)) becomes a gelu_erf post-op
//                           of the producing MatMul/Gemm/Conv (or a Gelu node)
//   7. FoldIntoMatMul     — a MatMul of two run-time operands reads them
//                           through their Transposes and writes its output
//                           scaled (a scalar Div/Mul) and transposed
//   8. FuseActivations    — Relu / LeakyRelu / Clip become oneDNN post-ops
// Each pass keeps graph outputs' names and the graph's meaning unchanged.
#pragma once

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "engine/graph.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace qs {

absl::Status RemoveIdentityOps(Graph& graph);
absl::Status FoldConstants(Graph& graph, const dnnl::engine& engine);
absl::Status FoldBatchNorm(Graph& graph);
absl::Status FuseMatMulBias(Graph& graph);
absl::Status FuseLayerNorm(Graph& graph);
absl::Status FuseGelu(Graph& graph);
absl::Status FoldIntoMatMul(Graph& graph);
absl::Status FuseActivations(Graph& graph);

absl::Status RunDefaultPasses(Graph& graph, const dnnl::engine& engine);

// Helpers shared by the passes.
int CountConsumers(const Graph& graph, const std::string& value);
bool IsGraphOutput(const Graph& graph, const std::string& value);
void RenameInputs(Graph& graph, const std::string& from, const std::string& to);
// Drops initializers no node reads any more.
void RemoveUnusedInitializers(Graph& graph);
// Index of the node producing `value`, or -1.
int FindProducer(const Graph& graph, const std::string& value);
// The single node reading `value` (which must not be a graph output), or -1.
int SoleConsumer(const Graph& graph, const std::string& value);
// The value of a constant float scalar (any shape with one element).
std::optional<float> ConstantScalar(const Graph& graph, const std::string& value);
// Keeps the nodes not marked in `removed` (same order).
void EraseNodes(Graph& graph, const std::vector<bool>& removed);

}  // namespace qs
