// ONNX MatMul with NumPy semantics: 1-D operands are promoted (and the
// added dim removed from the result), batch dims broadcast. A constant 2-D
// right operand runs as a packed inner_product over all rows of A. An
// optional third input (engine-internal, from passes/fuse_matmul_bias.cc)
// is a constant bias of N elements added to every row. Engine-internal
// attributes from passes/fold_into_matmul.cc read the operands through
// transpositions (a_perm, b_perm), scale the product (alpha) and write it
// transposed (y_perm).
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
  // Strides of a, b and dst (the views passes/fold_into_matmul.cc sets up).
  Shape a_strides, b_strides, dst_strides;
};

// Validates a permutation attribute of `rank` entries (empty: none given).
absl::StatusOr<std::vector<int64_t>> PermAttr(const Node& n, const char* key, size_t rank) {
  if (!n.HasAttr(key)) return std::vector<int64_t>{};
  std::vector<int64_t> perm = n.GetInts(key);
  std::vector<bool> seen(rank, false);
  bool ok = perm.size() == rank;
  for (int64_t p : perm) {
    ok = ok && p >= 0 && p < static_cast<int64_t>(rank) && !seen[p];
    if (ok) seen[p] = true;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(n.Describe(), ": ", key,
                                                   " is not a permutation of ", rank, " axes"));
  }
  return perm;
}

// A stored row-major tensor read through Transpose(perm): view dim i is
// stored dim perm[i].
void PermutedView(const Shape& stored, const std::vector<int64_t>& perm, Shape* dims,
                  Shape* strides) {
  const Shape row_major = RowMajorStrides(stored);
  dims->clear();
  strides->clear();
  for (int64_t p : perm) {
    dims->push_back(stored[p]);
    strides->push_back(row_major[p]);
  }
}

// Left-pads a view to `rank` with size-1 dims (their stride never matters).
void PadView(Shape* dims, Shape* strides, size_t rank) {
  while (dims->size() < rank) {
    dims->insert(dims->begin(), 1);
    strides->insert(strides->begin(), strides->empty() ? 1 : (*strides)[0] * (*dims)[1]);
  }
}

absl::StatusOr<MatmulShapes> ResolveMatmul(const OpContext& c) {
  Shape a = c.in_shapes[0], b = c.in_shapes[1];
  if (a.empty() || b.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": operands must have rank >= 1"));
  }
  Shape a_strides = RowMajorStrides(a), b_strides = RowMajorStrides(b);
  ASSIGN_OR_RETURN(auto a_perm, PermAttr(c.node, "a_perm", a.size()));
  ASSIGN_OR_RETURN(auto b_perm, PermAttr(c.node, "b_perm", b.size()));
  if (!a_perm.empty()) PermutedView(c.in_shapes[0], a_perm, &a, &a_strides);
  if (!b_perm.empty()) PermutedView(c.in_shapes[1], b_perm, &b, &b_strides);
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) {
    a.insert(a.begin(), 1);
    a_strides.insert(a_strides.begin(), a[1]);
  }
  if (b_vec) {
    b.push_back(1);
    b_strides.push_back(1);
  }
  if (a.back() != b[b.size() - 2]) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": inner dimensions differ: ", ShapeToString(a), " x ",
        ShapeToString(b)));
  }
  Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
  auto batch = BroadcastShapes(a_batch, b_batch);
  if (!batch.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": batch dims: ", batch.status().message()));
  }
  MatmulShapes r;
  const size_t rank = batch->size() + 2;
  r.a = a;
  r.a_strides = a_strides;
  PadView(&r.a, &r.a_strides, rank);
  r.b = b;
  r.b_strides = b_strides;
  PadView(&r.b, &r.b_strides, rank);
  r.dst = *batch;
  r.dst.push_back(a[a.size() - 2]);
  r.dst.push_back(b.back());
  r.out = *batch;
  if (!a_vec) r.out.push_back(a[a.size() - 2]);
  if (!b_vec) r.out.push_back(b.back());
  // The product written through Transpose(y_perm): output dim i is product
  // dim y_perm[i], so product dim y_perm[i] has the output's stride i.
  ASSIGN_OR_RETURN(auto y_perm, PermAttr(c.node, "y_perm", r.out.size()));
  if (!y_perm.empty()) {
    Shape out_strides = RowMajorStrides(r.out);
    Shape product = r.out;
    for (size_t i = 0; i < y_perm.size(); ++i) r.out[i] = product[y_perm[i]];
    const Shape stored = RowMajorStrides(r.out);
    for (size_t i = 0; i < y_perm.size(); ++i) out_strides[y_perm[i]] = stored[i];
    // dst = the product with the promoted size-1 dims put back (plain when
    // it is not transposed).
    r.dst_strides = out_strides;
    if (a_vec) r.dst_strides.insert(r.dst_strides.end() - (b_vec ? 0 : 1), 1);
    if (b_vec) r.dst_strides.push_back(1);
  }
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
  const bool views = c.node.HasAttr("a_perm") || c.node.HasAttr("b_perm") ||
                     c.node.HasAttr("y_perm") || c.node.HasAttr("alpha");
  if (b != nullptr && b->rank() == 2 && c.in_shapes[0].size() >= 2 && !views) {
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
  spec.a_strides = s.a_strides;
  spec.b_dims = s.b;
  spec.b_strides = s.b_strides;
  spec.dst_dims = s.dst;
  spec.dst_strides = s.dst_strides;
  spec.out_shape = s.out;
  spec.alpha = c.node.GetFloat("alpha", 1.f);
  return BuildMatmulKernel(c, std::move(spec));
}

}  // namespace

extern const OpDef kMatMulOp = {"MatMul", 1, {2}, InferMatMul, BuildMatMul};

}  // namespace qs
