// How an activation node maps onto a oneDNN eltwise algorithm; shared by the
// eltwise kernel and the activation-fusion pass.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace qs {

struct EltwiseParams {
  dnnl::algorithm algorithm;
  float alpha = 0.f;
  float beta = 0.f;
};

// `consts[i]` is the constant value of input i or nullptr (Clip's min/max).
absl::StatusOr<EltwiseParams> GetEltwiseParams(const Node& node,
                                               const std::vector<const Tensor*>& consts,
                                               int64_t opset);

}  // namespace qs
