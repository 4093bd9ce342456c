// ONNX Conv (1-D/2-D/3-D, pads, strides, dilations, groups incl. depthwise)
// as a oneDNN convolution with layouts chosen by oneDNN (format_tag::any).
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
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    out[0] = Tensor(DataType::kFloat32, out_shape_);
    const auto& eng = ctx.engine();
    memory src = ReorderIfNeeded(Wrap(x_plain_, in[0], eng), pd_.src_desc(), ctx);
    memory weights = const_weights_
                         ? *const_weights_
                         : ReorderIfNeeded(Wrap(w_plain_, in[1], eng),
                                           pd_.weights_desc(), ctx);
    memory dst_plain = Wrap(y_plain_, out[0], eng);
    memory dst = pd_.dst_desc() == y_plain_ ? dst_plain : memory(pd_.dst_desc(), eng);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    if (has_bias_) {
      args[DNNL_ARG_BIAS] = const_bias_ ? *const_bias_ : Wrap(b_plain_, in[2], eng);
    }
    step_.Execute(args, ctx);
    if (dst != dst_plain) {
      dnnl::reorder(dst, dst_plain).execute(ctx.stream(), dst, dst_plain);
    }
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(SpatialParams p, ConvSpatial(c));
    auto k = std::make_unique<ConvKernel>();
    const Shape& x = c.in_shapes[0];
    const Shape& w = c.in_shapes[1];
    const int64_t group = c.node.GetInt("group", 1);
    k->out_shape_ = c.out_shapes[0];
    k->x_plain_ = PlainDesc(x);
    k->y_plain_ = PlainDesc(k->out_shape_);
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
                   k->b_plain_, any(k->out_shape_), p.strides, dil, p.pad_begin,
                   p.pad_end);
    } else {
      desc.emplace(dnnl::prop_kind::forward_inference,
                   dnnl::algorithm::convolution_direct, any(x), any(w_dims),
                   any(k->out_shape_), p.strides, dil, p.pad_begin, p.pad_end);
    }
    k->pd_ = dnnl::convolution_forward::primitive_desc(
        *desc, MakeAttr(c.node.fused_activations), *c.engine);
    k->info_ = DescribePrimitive(k->pd_);
    k->step_ = MakeStep<dnnl::convolution_forward::primitive_desc,
                        dnnl::convolution_forward>(k->pd_);
    if (const Tensor* wt = c.constant(1)) {
      k->const_weights_ = c.weights->Get(c.node.inputs[1], *wt, k->w_plain_,
                                         k->pd_.weights_desc());
    }
    if (const Tensor* bt = c.constant(2); bt && k->has_bias_) {
      k->const_bias_ = c.weights->Get(c.node.inputs[2], *bt, k->b_plain_, k->b_plain_);
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  Shape out_shape_;
  memory::desc x_plain_, w_plain_, b_plain_, y_plain_;
  bool has_bias_ = false;
  dnnl::convolution_forward::primitive_desc pd_;
  KernelInfo info_;
  DnnlStep step_;
  std::optional<memory> const_weights_, const_bias_;
};

}  // namespace

extern const OpDef kConvOp = {"Conv", 1, {}, InferConv, ConvKernel::Build};

}  // namespace qs
