// QConv: a quantized Conv on oneDNN's int8 convolution. u8/s8 codes in,
// s8 weights (unpacked from their packed sub-8-bit storage), per-channel
// output scales and fused activations as attributes, f32/u8/s8 out.
#include "absl/strings/str_cat.h"
#include "engine/ops/conv_geometry.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/quantized_layer.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

absl::StatusOr<std::vector<TypedShape>> InferQConv(const OpContext& c) {
  RETURN_IF_ERROR(CheckQuantizedIo(c));
  const Shape w = c.node.GetInts("w_shape");
  ASSIGN_OR_RETURN(SpatialParams p, ConvGeometry(c.node, c.in_shapes[0], w, nullptr));
  Shape out = {c.in_shapes[0][0], w[0]};
  out.insert(out.end(), p.out.begin(), p.out.end());
  return std::vector<TypedShape>{{static_cast<DataType>(c.node.GetInt("out_dtype", 1)), out}};
}

class QConvKernel : public Kernel {
 public:
  KernelInfo Info() const override { return info_; }
  memory::desc OutputLayout() const override { return dst_.OutputLayout(); }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    memory src = src_.Get(in[0], ctx, ScratchSlot::kSrc0);
    memory dst = dst_.Begin(out[0], ctx);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
    if (bias_) args[DNNL_ARG_BIAS] = *bias_;
    step_.Execute(args, ctx);
    dst_.Finish(dst, out[0], ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(QuantizedLayerParams q, ReadQuantizedLayer(c));
    ASSIGN_OR_RETURN(SpatialParams p, ConvGeometry(c.node, c.in_shapes[0], q.w_shape, nullptr));
    auto k = std::make_unique<QConvKernel>();
    const Shape& x = c.in_shapes[0];
    const Shape& w = q.w_shape;
    const int64_t group = c.node.GetInt("group", 1);
    const Shape out_shape = c.out_shapes[0];
    Shape w_dims = w;
    if (group > 1) {
      w_dims = {group, w[0] / group};
      w_dims.insert(w_dims.end(), w.begin() + 1, w.end());
    }
    auto any = [](const Shape& s, DataType t) {
      return memory::desc(s, ToDnnl(t), memory::format_tag::any);
    };
    memory::dims dil(p.dilations.size());
    for (size_t i = 0; i < dil.size(); ++i) dil[i] = p.dilations[i] - 1;
    Int8Epilogue e = MakeInt8Epilogue(c.node, q, /*scale_mask=*/1 << 1);
    memory::desc b_desc = PlainDesc({w[0]});
    std::optional<dnnl::convolution_forward::desc> desc;
    if (!e.bias_acc.empty()) {
      desc.emplace(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                   any(x, q.x_dtype), any(w_dims, DataType::kInt8), b_desc,
                   any(out_shape, q.out_dtype), p.strides, dil, p.pad_begin, p.pad_end);
    } else {
      desc.emplace(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                   any(x, q.x_dtype), any(w_dims, DataType::kInt8),
                   any(out_shape, q.out_dtype), p.strides, dil, p.pad_begin, p.pad_end);
    }
    k->pd_ = dnnl::convolution_forward::primitive_desc(*desc, e.attr, *c.engine);
    k->info_ = DescribePrimitive(k->pd_);
    k->src_ = LayoutIn(GivenLayout(c, 0), k->pd_.src_desc(), *c.engine);
    k->dst_ = LayoutOut(k->pd_.dst_desc(), q.out_dtype, out_shape, c.out_layout_free, *c.engine);
    k->step_ = MakeStep<dnnl::convolution_forward::primitive_desc, dnnl::convolution_forward>(k->pd_);
    Tensor codes = Tensor::FromVector<int8_t>(w, q.weights.codes);
    k->weights_ = c.weights->Get(c.node.name + "#qweights", codes,
                                 PlainDesc(w_dims, DataType::kInt8), k->pd_.weights_desc());
    if (!e.bias_acc.empty()) {
      Tensor bias = Tensor::FromVector<float>({w[0]}, e.bias_acc);
      k->bias_ = c.weights->Get(c.node.name + "#qbias", bias, b_desc, b_desc);
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  LayoutIn src_;
  LayoutOut dst_;
  dnnl::convolution_forward::primitive_desc pd_;
  KernelInfo info_;
  DnnlStep step_;
  memory weights_;
  std::optional<memory> bias_;
};

}  // namespace

extern const OpDef kQConvOp = {
    "QConv", 1, {1, 2, 3, 4}, InferQConv, QConvKernel::Build, "", false, {0}};

}  // namespace qs
