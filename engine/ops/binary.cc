// Add, Sub, Mul, Div with NumPy broadcasting: float32 on oneDNN binary;
// int64/int32 (shape arithmetic, usually evaluated when a plan is built)
// by a plain loop.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/ops/broadcast.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

bool IsInteger(DataType t) { return t == DataType::kInt64 || t == DataType::kInt32; }

absl::Status CheckTypes(const OpContext& c) {
  const DataType t = c.in_dtypes[0];
  for (size_t i = 0; i < c.in_dtypes.size(); ++i) {
    if (c.in_dtypes[i] != t || (t != DataType::kFloat32 && !IsInteger(t))) {
      return absl::UnimplementedError(absl::StrCat(
          c.node.Describe(), ": input ", i, " has type ", DataTypeName(c.in_dtypes[i]),
          "; supported: float32, int64, int32 (both inputs the same)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TypedShape>> InferBinary(const OpContext& c) {
  RETURN_IF_ERROR(CheckTypes(c));
  auto out = BroadcastShapes(c.in_shapes[0], c.in_shapes[1]);
  if (!out.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": ", out.status().message()));
  }
  return std::vector<TypedShape>{{c.in_dtypes[0], *out}};
}

template <typename T>
absl::Status IntegerBinary(const std::string& op, const Tensor& a, const Tensor& b,
                           Tensor& out) {
  if (op == "Add") {
    BroadcastBinary<T, T>(a, b, out, [](T x, T y) { return static_cast<T>(x + y); });
  } else if (op == "Sub") {
    BroadcastBinary<T, T>(a, b, out, [](T x, T y) { return static_cast<T>(x - y); });
  } else if (op == "Mul") {
    BroadcastBinary<T, T>(a, b, out, [](T x, T y) { return static_cast<T>(x * y); });
  } else {
    bool by_zero = false;
    BroadcastBinary<T, T>(a, b, out, [&](T x, T y) {
      by_zero |= y == 0;
      return y == 0 ? T{0} : static_cast<T>(x / y);  // ONNX: truncating division
    });
    if (by_zero) return absl::InvalidArgumentError("integer division by zero");
  }
  return absl::OkStatus();
}

// The Relu fused into an integer Add (passes/fuse_activation.cc fuses only
// Relu into Adds).
template <typename T>
absl::Status ApplyActivations(const std::vector<FusedActivation>& acts, Tensor& t) {
  T* v = t.data<T>();
  for (const auto& a : acts) {
    if (a.kind != FusedActivation::Kind::kRelu) {
      return absl::UnimplementedError("only Relu is fused into an integer Add");
    }
    for (int64_t i = 0; i < t.num_elements(); ++i) v[i] = std::max(v[i], T{0});
  }
  return absl::OkStatus();
}

class IntegerBinaryKernel : public Kernel {
 public:
  IntegerBinaryKernel(std::string op, TypedShape out, std::vector<FusedActivation> acts)
      : op_(std::move(op)), out_(std::move(out)), acts_(std::move(acts)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(out_.dtype, out_.shape);
    if (out_.dtype == DataType::kInt64) {
      RETURN_IF_ERROR(IntegerBinary<int64_t>(op_, in[0], in[1], out[0]));
      return ApplyActivations<int64_t>(acts_, out[0]);
    }
    RETURN_IF_ERROR(IntegerBinary<int32_t>(op_, in[0], in[1], out[0]));
    return ApplyActivations<int32_t>(acts_, out[0]);
  }

 private:
  std::string op_;
  TypedShape out_;
  std::vector<FusedActivation> acts_;
};

dnnl::algorithm AlgorithmFor(const std::string& op) {
  if (op == "Add") return dnnl::algorithm::binary_add;
  if (op == "Sub") return dnnl::algorithm::binary_sub;
  if (op == "Mul") return dnnl::algorithm::binary_mul;
  return dnnl::algorithm::binary_div;
}

// Both inputs of the output's shape, at least one in an opaque layout (a
// conv's blocked output, e.g. ResNet's residual Add): the binary runs in that
// layout, the other input reordered to it if needed.
class OpaqueBinaryKernel : public Kernel {
 public:
  memory::desc OutputLayout() const override { return dst_.OutputLayout(); }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    memory a = src0_.Get(in[0], ctx, ScratchSlot::kSrc0);
    memory b = src1_.Get(in[1], ctx, ScratchSlot::kSrc1);
    memory dst = dst_.Begin(out[0], ctx);
    step_.Execute({{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}}, ctx);
    dst_.Finish(dst, out[0], ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    const memory::desc layout =
        c.in_layout(0) != memory::desc() ? c.in_layout(0) : c.in_layout(1);
    auto k = std::make_unique<OpaqueBinaryKernel>();
    k->src0_ = LayoutIn(GivenLayout(c, 0), layout, *c.engine);
    k->src1_ = LayoutIn(GivenLayout(c, 1), layout, *c.engine);
    dnnl::binary::desc d(AlgorithmFor(c.node.op_type), layout, layout, layout);
    dnnl::binary::primitive_desc pd(d, MakeAttr(c.node.fused_activations), *c.engine);
    k->step_ = MakeStep<dnnl::binary::primitive_desc, dnnl::binary>(pd);
    k->dst_ = LayoutOut(layout, DataType::kFloat32, c.out_shapes[0], c.out_layout_free,
                        *c.engine);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  LayoutIn src0_, src1_;
  LayoutOut dst_;
  DnnlStep step_;
};

class BinaryKernel : public Kernel {
 public:
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    out[0] = Tensor::Uninitialized(DataType::kFloat32, out_shape_);
    if (out[0].num_elements() == 0) return absl::OkStatus();
    // An input in an opaque layout is read as plain (broadcasting is defined
    // on logical shapes).
    const Tensor in0 = plain_[0].GetTensor(in[0], ctx);
    const Tensor in1 = plain_[1].GetTensor(in[1], ctx);
    const Tensor* a = swap_ ? &in1 : &in0;
    const Tensor* b = swap_ ? &in0 : &in1;
    Tensor expanded;
    if (expand_a_) {  // src0 must have the output's shape in oneDNN
      expanded = Tensor(DataType::kFloat32, dims_);
      BroadcastInto(*a, a->shape(), 1.f, expanded);
      a = &expanded;
    }
    const auto& eng = ctx.engine();
    step_.Execute({{DNNL_ARG_SRC_0, Wrap(dst_desc_, *a, eng)},
                   {DNNL_ARG_SRC_1, Wrap(b_desc_, *b, eng)},
                   {DNNL_ARG_DST, Wrap(dst_desc_, out[0], eng)}},
                  ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    if (IsInteger(c.out_dtypes[0])) {
      return std::unique_ptr<Kernel>(new IntegerBinaryKernel(
          c.node.op_type, TypedShape{c.out_dtypes[0], c.out_shapes[0]},
          c.node.fused_activations));
    }
    const bool any_opaque = c.in_layout(0) != memory::desc() || c.in_layout(1) != memory::desc();
    if (any_opaque && c.in_shapes[0] == c.out_shapes[0] && c.in_shapes[1] == c.out_shapes[0]) {
      return OpaqueBinaryKernel::Build(c);
    }
    auto k = std::make_unique<BinaryKernel>();
    k->out_shape_ = c.out_shapes[0];
    for (size_t i = 0; i < 2; ++i) {
      k->plain_[i] = LayoutIn(GivenLayout(c, i), PlainDesc(c.in_shapes[i]), *c.engine);
    }
    if (NumElements(k->out_shape_) == 0) return std::unique_ptr<Kernel>(std::move(k));
    const size_t rank = std::max<size_t>(1, k->out_shape_.size());
    k->dims_ = PadLeft(k->out_shape_, rank);
    Shape a = PadLeft(c.in_shapes[0], rank), b = PadLeft(c.in_shapes[1], rank);
    const bool commutative = c.node.op_type == "Add" || c.node.op_type == "Mul";
    if (a != k->dims_ && b == k->dims_ && commutative) {
      k->swap_ = true;
      std::swap(a, b);
    }
    k->expand_a_ = a != k->dims_;
    k->dst_desc_ = PlainDesc(k->dims_);
    k->b_desc_ = PlainDesc(b);
    dnnl::binary::desc d(AlgorithmFor(c.node.op_type), k->dst_desc_, k->b_desc_,
                         k->dst_desc_);
    dnnl::binary::primitive_desc pd(d, MakeAttr(c.node.fused_activations), *c.engine);
    k->step_ = MakeStep<dnnl::binary::primitive_desc, dnnl::binary>(pd);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  Shape out_shape_, dims_;
  LayoutIn plain_[2];  // opaque inputs -> plain
  bool swap_ = false, expand_a_ = false;
  memory::desc dst_desc_, b_desc_;
  DnnlStep step_;
};

}  // namespace

extern const OpDef kAddOp = {"Add", 7, {}, InferBinary, BinaryKernel::Build, "", false, {0, 1}};
extern const OpDef kSubOp = {"Sub", 7, {}, InferBinary, BinaryKernel::Build, "", false, {0, 1}};
extern const OpDef kMulOp = {"Mul", 7, {}, InferBinary, BinaryKernel::Build, "", false, {0, 1}};
extern const OpDef kDivOp = {"Div", 7, {}, InferBinary, BinaryKernel::Build, "", false, {0, 1}};

}  // namespace qs
