// A general oneDNN matmul over strided 2-D+ operands, used by Gemm and
// MatMul when the weight operand is computed at run time (or broadcast):
//   dst = alpha · (A · B) [+ beta · C] then fused activations.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "engine/kernel.h"

namespace qs {

struct MatmulSpec {
  // oneDNN dims/strides of A [.., M, K] and B [.., K, N], same rank.
  Shape a_dims, a_strides, b_dims, b_strides;
  Shape dst_dims;     // [.., M, N]
  Shape dst_strides;  // empty: row-major
  Shape out_shape;    // the ONNX output shape (same element count as dst)
  float alpha = 1.f;
  // Optional addend C (input index `c_input`), broadcast to dst and scaled
  // by beta before the product is accumulated onto it.
  int c_input = -1;
  Shape c_shape;
  float beta = 1.f;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildMatmulKernel(const OpContext& c,
                                                          MatmulSpec spec);

}  // namespace qs
