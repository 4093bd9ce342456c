// A dense layer y = x·Wᵀ + b on a oneDNN inner_product with constant
// weights packed once at load; the fast path shared by Gemm and MatMul
// whenever the weight operand is a constant matrix.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/kernel.h"

namespace qs {

struct DenseSpec {
  int64_t m = 0;           // rows of x (batch, or batch × sequence)
  std::string weight_key;  // cache key for the packed weights
  Tensor weights_nk;       // [N, K], already scaled by alpha
  Tensor bias;             // [N] or empty
  Shape out_shape;         // product of all but last dim == m, last == N
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildDenseKernel(const OpContext& c,
                                                         DenseSpec spec);

// [K, N] -> [N, K] (or a copy when `already_nk`), times `scale`.
Tensor TransposedScaled(const Tensor& w, bool already_nk, float scale);

}  // namespace qs
