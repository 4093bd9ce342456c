// ONNX Conv (1-D/2-D/3-D, pads, strides, dilations, groups incl. depthwise)
// as a oneDNN convolution with layouts chosen by oneDNN (format_tag::any).
// The input may arrive in, and the output stay in, that blocked layout when
// the neighbours are layout-aware too (OpContext::in_layouts/out_layout_free).
#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/conv_geometry.h"
#include "engine/ops/spatial.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

absl::StatusOr<SpatialParams> ConvSpatial(const OpContext& c) {
  RETURN_IF_ERROR(RequireFloatInputs(c));
  return ConvGeometry(c.node, c.in_shapes[0], c.in_shapes[1],
                      c.has_input(2) ? &c.in_shapes[2] : nullptr);
}

absl::StatusOr<std::vector<TypedShape>> InferConv(const OpContext& c) {
  ASSIGN_OR_RETURN(SpatialParams p, ConvSpatial(c));
  Shape out = {c.in_shapes[0][0], c.in_shapes[1][0]};
  out.insert(out.end(), p.out.begin(), p.out.end());
  return std::vector<TypedShape>{{DataType::kFloat32, out}};
}

class ConvKernel : public Kernel {
 public:
  KernelInfo Info() const override { return info_; }
  memory::desc OutputLayout() const override { return dst_.OutputLayout(); }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    memory src = src_.Get(in[0], ctx, ScratchSlot::kSrc0);
    memory weights =
        const_weights_ ? *const_weights_ : weights_.Get(in[1], ctx, ScratchSlot::kSrc1);
    memory dst = dst_.Begin(out[0], ctx);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    if (has_bias_) {
      args[DNNL_ARG_BIAS] = const_bias_ ? *const_bias_ : Wrap(b_plain_, in[2], ctx.engine());
    }
    step_.Execute(args, ctx);
    dst_.Finish(dst, out[0], ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(SpatialParams p, ConvSpatial(c));
    auto k = std::make_unique<ConvKernel>();
    const Shape& x = c.in_shapes[0];
    const Shape& w = c.in_shapes[1];
    const int64_t group = c.node.GetInt("group", 1);
    const Shape out_shape = c.out_shapes[0];
    Shape w_dims = w;
    if (group > 1) {
      w_dims = {group, w[0] / group};
      w_dims.insert(w_dims.end(), w.begin() + 1, w.end());
    }
    k->w_plain_ = PlainDesc(w_dims);
    k->has_bias_ = c.has_input(2);
    auto any = [](const Shape& s) {
      return memory::desc(s, memory::data_type::f32, memory::format_tag::any);
    };
    memory::dims dil(p.dilations.size());
    for (size_t i = 0; i < dil.size(); ++i) dil[i] = p.dilations[i] - 1;
    std::optional<dnnl::convolution_forward::desc> desc;
    if (k->has_bias_) {
      k->b_plain_ = PlainDesc(c.in_shapes[2]);
      desc.emplace(dnnl::prop_kind::forward_inference,
                   dnnl::algorithm::convolution_direct, any(x), any(w_dims),
                   k->b_plain_, any(out_shape), p.strides, dil, p.pad_begin,
                   p.pad_end);
    } else {
      desc.emplace(dnnl::prop_kind::forward_inference,
                   dnnl::algorithm::convolution_direct, any(x), any(w_dims),
                   any(out_shape), p.strides, dil, p.pad_begin, p.pad_end);
    }
    k->pd_ = dnnl::convolution_forward::primitive_desc(
        *desc, MakeAttr(c.node.fused_activations), *c.engine);
    k->info_ = DescribePrimitive(k->pd_);
    k->src_ = LayoutIn(GivenLayout(c, 0), k->pd_.src_desc(), *c.engine);
    k->dst_ = LayoutOut(k->pd_.dst_desc(), DataType::kFloat32, out_shape, c.out_layout_free,
                        *c.engine);
    k->step_ = MakeStep<dnnl::convolution_forward::primitive_desc,
                        dnnl::convolution_forward>(k->pd_);
    if (const Tensor* wt = c.constant(1)) {
      k->const_weights_ = c.weights->Get(c.node.inputs[1], *wt, k->w_plain_,
                                         k->pd_.weights_desc());
    } else {
      k->weights_ = LayoutIn(k->w_plain_, k->pd_.weights_desc(), *c.engine);
    }
    if (const Tensor* bt = c.constant(2); bt && k->has_bias_) {
      k->const_bias_ = c.weights->Get(c.node.inputs[2], *bt, k->b_plain_, k->b_plain_);
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  memory::desc w_plain_, b_plain_;
  LayoutIn src_, weights_;  // weights_: only for weights computed at run time
  LayoutOut dst_;
  bool has_bias_ = false;
  dnnl::convolution_forward::primitive_desc pd_;
  KernelInfo info_;
  DnnlStep step_;
  std::optional<memory> const_weights_, const_bias_;
};

}  // namespace

extern const OpDef kConvOp = {"Conv", 1, {}, InferConv, ConvKernel::Build, "", false, {0}};

}  // namespace qs
