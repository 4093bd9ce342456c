// The static table of supported ONNX ops: op type -> shape inference and
// kernel builder. No macro registries: each op file defines one OpDef and
// op_registry.cc lists them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/kernel.h"

namespace qs {

// The ai.onnx opsets the engine accepts; each op may require a later
// minimum (OpDef::min_opset) where its earlier versions meant something else.
inline constexpr int64_t kMinOpset = 1;
inline constexpr int64_t kMaxOpset = 17;
// The ai.onnx.ml (classical ML) opsets the engine accepts (ONNX 1.12 defines 1-3).
inline constexpr char kMlDomain[] = "ai.onnx.ml";
inline constexpr int64_t kMinMlOpset = 1;
inline constexpr int64_t kMaxMlOpset = 3;

struct OpDef {
  const char* op_type;
  // The oldest opset whose version of this op the engine implements.
  int64_t min_opset;
  // Inputs that must be constant (shape operands and the like).
  std::vector<int> constant_inputs;
  InferFn infer;
  BuildFn build;
  // "" for ai.onnx; kMlDomain for the classical ML ops; min_opset counts in
  // this domain's opsets.
  const char* domain = "";
  // The output depends only on the input shapes (Shape): such a node, and
  // every node whose inputs are all known when a plan is built, is evaluated
  // once per plan (per batch size) instead of on every run.
  bool shape_only = false;
  // Inputs that may arrive in an opaque oneDNN layout (OpContext::in_layouts);
  // an op listing any also honours OpContext::out_layout_free for output 0.
  std::vector<int> layout_free_inputs = {};
};

const OpDef* FindOp(std::string_view op_type);
// The opset a node of `domain` runs at in `graph` (ai.onnx or ai.onnx.ml).
int64_t NodeOpset(const Graph& graph, const std::string& domain);
// "Add, AveragePool, …" for error messages and docs.
std::string SupportedOpsList();
std::vector<std::string> SupportedOps();

// Unimplemented unless every float input of the node is float32.
absl::Status RequireFloatInputs(const OpContext& c);

}  // namespace qs
