// ONNX Gemm: Y = alpha · A' · B' + beta · C, with transA/transB.
// Constant B (a dense layer) runs as a packed inner_product; anything else
// as a strided matmul.
#include "absl/strings/str_cat.h"
#include "engine/ops/broadcast.h"
#include "engine/ops/dense.h"
#include "engine/ops/matmul_primitive.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

struct GemmDims {
  int64_t m, k, n;
};

absl::StatusOr<GemmDims> GemmShape(const OpContext& c) {
  const Shape& a = c.in_shapes[0];
  const Shape& b = c.in_shapes[1];
  if (a.size() != 2 || b.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": A ", ShapeToString(a), " and B ", ShapeToString(b),
        " must be matrices"));
  }
  const bool ta = c.node.GetInt("transA", 0) != 0;
  const bool tb = c.node.GetInt("transB", 0) != 0;
  GemmDims d{ta ? a[1] : a[0], ta ? a[0] : a[1], tb ? b[0] : b[1]};
  const int64_t kb = tb ? b[1] : b[0];
  if (kb != d.k) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": inner dimensions differ: A", ta ? "ᵀ " : " ",
        ShapeToString(a), " vs B", tb ? "ᵀ " : " ", ShapeToString(b)));
  }
  if (c.has_input(2)) {
    auto bs = BroadcastShapes({d.m, d.n}, c.in_shapes[2]);
    if (!bs.ok() || *bs != Shape{d.m, d.n}) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": C ", ShapeToString(c.in_shapes[2]),
          " does not broadcast to [", d.m, ",", d.n, "]"));
    }
  }
  return d;
}

absl::StatusOr<std::vector<TypedShape>> InferGemm(const OpContext& c) {
  RETURN_IF_ERROR(RequireFloatInputs(c));
  ASSIGN_OR_RETURN(GemmDims d, GemmShape(c));
  return std::vector<TypedShape>{{DataType::kFloat32, {d.m, d.n}}};
}

// C as a per-column bias (shape [N], [1,N] or a scalar), scaled by beta.
std::optional<Tensor> ColumnBias(const OpContext& c, int64_t n, float beta) {
  if (!c.has_input(2)) return Tensor();
  const Tensor* ct = c.constant(2);
  if (ct == nullptr) return std::nullopt;
  Shape s = PadLeft(ct->shape(), 2);
  if (s[0] != 1) return std::nullopt;
  Tensor bias(DataType::kFloat32, {n});
  for (int64_t j = 0; j < n; ++j) {
    bias.data<float>()[j] = beta * ct->data<float>()[s[1] == 1 ? 0 : j];
  }
  return bias;
}

absl::StatusOr<std::unique_ptr<Kernel>> BuildGemm(const OpContext& c) {
  ASSIGN_OR_RETURN(GemmDims d, GemmShape(c));
  const bool ta = c.node.GetInt("transA", 0) != 0;
  const bool tb = c.node.GetInt("transB", 0) != 0;
  const float alpha = c.node.GetFloat("alpha", 1.f);
  const float beta = c.node.GetFloat("beta", 1.f);
  if (const Tensor* b = c.constant(1); b != nullptr && !ta) {
    if (std::optional<Tensor> bias = ColumnBias(c, d.n, beta)) {
      DenseSpec spec;
      spec.m = d.m;
      spec.weight_key = c.node.inputs[1] + "#gemm:" + c.node.name;
      spec.weights_nk = TransposedScaled(*b, tb, alpha);
      spec.bias = *bias;
      spec.out_shape = {d.m, d.n};
      return BuildDenseKernel(c, std::move(spec));
    }
  }
  MatmulSpec spec;
  spec.a_dims = {d.m, d.k};
  spec.a_strides = ta ? Shape{1, d.m} : Shape{d.k, 1};
  spec.b_dims = {d.k, d.n};
  spec.b_strides = tb ? Shape{1, d.k} : Shape{d.n, 1};
  spec.dst_dims = spec.out_shape = {d.m, d.n};
  spec.alpha = alpha;
  if (c.has_input(2) && beta != 0.f) {
    spec.c_input = 2;
    spec.c_shape = c.in_shapes[2];
    spec.beta = beta;
  }
  return BuildMatmulKernel(c, std::move(spec));
}

}  // namespace

extern const OpDef kGemmOp = {"Gemm", 7, {}, InferGemm, BuildGemm};

}  // namespace qs
