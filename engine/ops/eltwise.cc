// Element-wise float ops on oneDNN eltwise: Relu, LeakyRelu, Clip, Sigmoid,
// Tanh, Sqrt, Pow (constant scalar exponent); Erf, which oneDNN lacks, is a
// plain loop. (Relu/LeakyRelu/Clip after Conv/Gemm/MatMul are usually fused
// away by passes/fuse_activation.cc; so are the Erf of GELU and the Sqrt/Pow
// of LayerNorm by passes/fuse_gelu.cc and passes/fuse_layer_norm.cc.)
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/ops/broadcast.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/element_copy.h"
#include "engine/ops/eltwise_params.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {

absl::StatusOr<EltwiseParams> GetEltwiseParams(const Node& node,
                                               const std::vector<const Tensor*>& consts,
                                               int64_t opset) {
  const std::string& op = node.op_type;
  if (op == "Relu") return EltwiseParams{dnnl::algorithm::eltwise_relu, 0.f, 0.f};
  if (op == "LeakyRelu") {
    return EltwiseParams{dnnl::algorithm::eltwise_relu, node.GetFloat("alpha", 0.01f), 0.f};
  }
  if (op == "Sigmoid") return EltwiseParams{dnnl::algorithm::eltwise_logistic, 0.f, 0.f};
  if (op == "Tanh") return EltwiseParams{dnnl::algorithm::eltwise_tanh, 0.f, 0.f};
  if (op == "Gelu") {
    const bool tanh = node.GetString("approximate", "none") == "tanh";
    return EltwiseParams{tanh ? dnnl::algorithm::eltwise_gelu_tanh
                              : dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f};
  }
  if (op == "Sqrt") return EltwiseParams{dnnl::algorithm::eltwise_sqrt, 0.f, 0.f};
  if (op == "Pow") {  // x^p = 1 · x^p on eltwise_pow
    const Tensor* p = consts.size() > 1 ? consts[1] : nullptr;
    if (p == nullptr || p->num_elements() != 1) {
      return absl::UnimplementedError(
          absl::StrCat(node.Describe(), ": the exponent must be a constant scalar"));
    }
    const float e = static_cast<float>(p->ScalarAsDouble());
    if (e == 2.f) return EltwiseParams{dnnl::algorithm::eltwise_square, 0.f, 0.f};
    return EltwiseParams{dnnl::algorithm::eltwise_pow, 1.f, e};
  }
  if (op == "Clip") {
    float lo = std::numeric_limits<float>::lowest();
    float hi = std::numeric_limits<float>::max();
    if (opset < 11) {
      lo = node.GetFloat("min", lo);
      hi = node.GetFloat("max", hi);
    } else {
      for (size_t i = 1; i <= 2; ++i) {
        if (!node.HasInput(i)) continue;
        const Tensor* t = i < consts.size() ? consts[i] : nullptr;
        if (t == nullptr || t->num_elements() != 1) {
          return absl::UnimplementedError(absl::StrCat(
              node.Describe(), ": Clip ", i == 1 ? "min" : "max",
              " must be a constant scalar"));
        }
        (i == 1 ? lo : hi) = static_cast<float>(t->ScalarAsDouble());
      }
    }
    return EltwiseParams{dnnl::algorithm::eltwise_clip, lo, hi};
  }
  return absl::InvalidArgumentError(absl::StrCat(op, " is not an eltwise op"));
}

namespace {

using dnnl::memory;

absl::StatusOr<std::vector<TypedShape>> InferSameShape(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kFloat32) {
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": input type ", DataTypeName(c.in_dtypes[0]),
        " is not supported (float32 only)"));
  }
  return std::vector<TypedShape>{{DataType::kFloat32, c.in_shapes[0]}};
}

// Runs in the layout its input arrives in (a conv's blocked output for the
// Relu after ResNet's residual Add), handing that layout on when allowed.
class EltwiseKernel : public Kernel {
 public:
  memory::desc OutputLayout() const override { return dst_.OutputLayout(); }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    if (in[0].num_elements() == 0) {
      out[0] = Tensor(DataType::kFloat32, in[0].shape());
      return absl::OkStatus();
    }
    memory src = Wrap(desc_, in[0], ctx.engine());
    memory dst = dst_.Begin(out[0], ctx);
    step_.Execute({{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, ctx);
    dst_.Finish(dst, out[0], ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(EltwiseParams p, GetEltwiseParams(c.node, c.constants, c.opset));
    auto k = std::make_unique<EltwiseKernel>();
    k->desc_ = GivenLayout(c, 0);
    if (NumElements(c.in_shapes[0]) == 0) return std::unique_ptr<Kernel>(std::move(k));
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, p.algorithm,
                                  k->desc_, p.alpha, p.beta);
    dnnl::eltwise_forward::primitive_desc pd(d, MakeAttr({}), *c.engine);
    k->step_ = MakeStep<dnnl::eltwise_forward::primitive_desc, dnnl::eltwise_forward>(pd);
    k->dst_ = LayoutOut(pd.dst_desc(), DataType::kFloat32, c.in_shapes[0], c.out_layout_free,
                        *c.engine);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  memory::desc desc_;
  LayoutOut dst_;
  DnnlStep step_;
};

class ErfKernel : public Kernel {
 public:
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor::Uninitialized(DataType::kFloat32, in[0].shape());
    const float* x = in[0].data<float>();
    float* y = out[0].data<float>();
    for (int64_t i = 0; i < in[0].num_elements(); ++i) y[i] = std::erf(x[i]);
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildErf(const OpContext&) {
  return std::unique_ptr<Kernel>(new ErfKernel());
}

// Pow with a run-time or non-scalar exponent, or integer operands: a
// broadcast loop in double precision. (The usual x^2 / x^0.5 with a
// constant scalar exponent runs on oneDNN eltwise.)
bool IsPowType(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kInt64 ||
         t == DataType::kInt32;
}

absl::StatusOr<std::vector<TypedShape>> InferPow(const OpContext& c) {
  if (!IsPowType(c.in_dtypes[0]) || !IsPowType(c.in_dtypes[1])) {
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": Pow supports float32, float64, int32 and int64 operands"));
  }
  auto out = BroadcastShapes(c.in_shapes[0], c.in_shapes[1]);
  if (!out.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": ", out.status().message()));
  }
  return std::vector<TypedShape>{{c.in_dtypes[0], *out}};
}

class PowKernel : public Kernel {
 public:
  explicit PowKernel(Shape out) : out_(std::move(out)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(in[0].dtype(), out_);
    const size_t rank = out_.size();
    const std::array<std::vector<int64_t>, 2> strides = {BroadcastStrides(in[0].shape(), rank),
                                                         BroadcastStrides(in[1].shape(), rank)};
    WithNumericType(in[0].dtype(), [&](auto xt) {
      using X = decltype(xt);
      WithNumericType(in[1].dtype(), [&](auto yt) {
        using Y = decltype(yt);
        const X* x = in[0].data<X>();
        const Y* y = in[1].data<Y>();
        X* dst = out[0].data<X>();
        ForEachBroadcast(out_, strides, [&](int64_t n, const std::array<int64_t, 2>& off) {
          dst[n] = static_cast<X>(std::pow(static_cast<double>(x[off[0]]),
                                           static_cast<double>(y[off[1]])));
        });
      });
    });
    return absl::OkStatus();
  }

 private:
  Shape out_;
};

bool IsScalarFloatPow(const OpContext& c) {
  return c.in_dtypes[0] == DataType::kFloat32 && c.constant(1) != nullptr &&
         c.constant(1)->num_elements() == 1;
}

absl::StatusOr<std::vector<TypedShape>> InferPowOp(const OpContext& c) {
  return IsScalarFloatPow(c) ? InferSameShape(c) : InferPow(c);
}

absl::StatusOr<std::unique_ptr<Kernel>> BuildPow(const OpContext& c) {
  if (IsScalarFloatPow(c)) return EltwiseKernel::Build(c);
  return std::unique_ptr<Kernel>(new PowKernel(c.out_shapes[0]));
}

}  // namespace

// Relu, LeakyRelu and Clip (the activations CNNs put between convolutions)
// take and hand on opaque layouts.
extern const OpDef kReluOp = {
    "Relu", 6, {}, InferSameShape, EltwiseKernel::Build, "", false, {0}};
extern const OpDef kLeakyReluOp = {
    "LeakyRelu", 6, {}, InferSameShape, EltwiseKernel::Build, "", false, {0}};
extern const OpDef kClipOp = {
    "Clip", 6, {1, 2}, InferSameShape, EltwiseKernel::Build, "", false, {0}};
extern const OpDef kSigmoidOp = {"Sigmoid", 6, {}, InferSameShape, EltwiseKernel::Build};
extern const OpDef kTanhOp = {"Tanh", 6, {}, InferSameShape, EltwiseKernel::Build};
extern const OpDef kSqrtOp = {"Sqrt", 6, {}, InferSameShape, EltwiseKernel::Build};
extern const OpDef kPowOp = {"Pow", 7, {}, InferPowOp, BuildPow};
extern const OpDef kErfOp = {"Erf", 9, {}, InferSameShape, BuildErf};
// ONNX added Gelu at opset 20 (beyond kMaxOpset): imported models cannot use
// it yet; passes/fuse_gelu.cc creates it where no producer takes a post-op.
extern const OpDef kGeluOp = {"Gelu", 20, {}, InferSameShape, EltwiseKernel::Build};

}  // namespace qs
