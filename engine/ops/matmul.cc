// ONNX MatMul with NumPy semantics: 1-D operands are promoted (and the
// added dim removed from the result), batch dims broadcast. A constant 2-D
// right operand runs as a packed inner_product over all rows of A. An
// optional third input (engine-internal, from passes/fuse_matmul_bias.cc)
// is a constant bias of N elements added to every row.
#include "absl/strings/str_cat.h"
#include "engine/ops/broadcast.h"
#include "engine/ops/dense.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/matmul_primitive.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

struct MatmulShapes {
  Shape a, b, dst, out;  // a, b, dst promoted to the same rank >= 2
};

absl::StatusOr<MatmulShapes> ResolveMatmul(const OpContext& c) {
  Shape a = c.in_shapes[0], b = c.in_shapes[1];
  if (a.empty() || b.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": operands must have rank >= 1"));
  }
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);
  if (b_vec) b.push_back(1);
  if (a.back() != b[b.size() - 2]) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": inner dimensions differ: ",
        ShapeToString(c.in_shapes[0]), " x ", ShapeToString(c.in_shapes[1])));
  }
  Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
  auto batch = BroadcastShapes(a_batch, b_batch);
  if (!batch.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": batch dims: ", batch.status().message()));
  }
  MatmulShapes r;
  const size_t rank = batch->size() + 2;
  r.a = PadLeft(a, rank);
  r.b = PadLeft(b, rank);
  r.dst = *batch;
  r.dst.push_back(a[a.size() - 2]);
  r.dst.push_back(b.back());
  r.out = *batch;
  if (!a_vec) r.out.push_back(a[a.size() - 2]);
  if (!b_vec) r.out.push_back(b.back());
  return r;
}

absl::StatusOr<std::vector<TypedShape>> InferMatMul(const OpContext& c) {
  RETURN_IF_ERROR(RequireFloatInputs(c));
  ASSIGN_OR_RETURN(MatmulShapes s, ResolveMatmul(c));
  if (c.has_input(2)) {
    const Tensor* b = c.constant(1);
    if (b == nullptr || b->rank() != 2 || c.in_shapes[0].size() < 2 ||
        NumElements(c.in_shapes[2]) != s.dst.back()) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": a bias needs a constant 2-D weight and ", s.dst.back(),
          " elements"));
    }
  }
  return std::vector<TypedShape>{{DataType::kFloat32, s.out}};
}

absl::StatusOr<std::unique_ptr<Kernel>> BuildMatMul(const OpContext& c) {
  ASSIGN_OR_RETURN(MatmulShapes s, ResolveMatmul(c));
  const Tensor* b = c.constant(1);
  if (b != nullptr && b->rank() == 2 && c.in_shapes[0].size() >= 2) {
    DenseSpec spec;
    spec.m = NumElements(c.in_shapes[0]) / c.in_shapes[0].back();
    spec.weight_key = c.node.inputs[1] + "#matmul";
    spec.weights_nk = TransposedScaled(*b, /*already_nk=*/false, 1.f);
    if (c.has_input(2)) spec.bias = c.constant(2)->Reshaped({b->shape()[1]});
    spec.out_shape = s.out;
    return BuildDenseKernel(c, std::move(spec));
  }
  MatmulSpec spec;
  spec.a_dims = s.a;
  spec.a_strides = RowMajorStrides(s.a);
  spec.b_dims = s.b;
  spec.b_strides = RowMajorStrides(s.b);
  spec.dst_dims = s.dst;
  spec.out_shape = s.out;
  return BuildMatmulKernel(c, std::move(spec));
}

}  // namespace

extern const OpDef kMatMulOp = {"MatMul", 1, {2}, InferMatMul, BuildMatMul};

}  // namespace qs
