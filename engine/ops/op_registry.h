// The static table of supported ONNX ops: op type -> shape inference and
// kernel builder. No macro registries: each op file defines one OpDef and
// op_registry.cc lists them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/kernel.h"

namespace qs {

// The ai.onnx opsets whose semantics the engine implements.
inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 17;

struct OpDef {
  const char* op_type;
  // Inputs that must be constant (shape operands and the like).
  std::vector<int> constant_inputs;
  InferFn infer;
  BuildFn build;
};

const OpDef* FindOp(std::string_view op_type);
// "Add, AveragePool, …" for error messages and docs.
std::string SupportedOpsList();
std::vector<std::string> SupportedOps();

}  // namespace qs
