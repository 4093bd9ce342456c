#include "engine/ops/dense.h"

#include "engine/ops/dnnl_util.h"
#include "engine/ops/gelu.h"

namespace qs {
namespace {

using dnnl::memory;

class DenseKernel : public Kernel {
 public:
  KernelInfo Info() const override { return info_; }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    out[0] = Tensor::Uninitialized(DataType::kFloat32, out_shape_);
    const auto& eng = ctx.engine();
    memory src = Wrap(src_desc_, in[0], eng);
    memory dst = Wrap(dst_desc_, out[0], eng);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
    if (bias_) args[DNNL_ARG_BIAS] = *bias_;
    step_.Execute(args, ctx);
    ctx.stream().wait();
    if (gelu_) GeluErfInPlace(out[0].data<float>(), out[0].num_elements());
    return absl::OkStatus();
  }

  bool gelu_ = false;
  Shape out_shape_;
  memory::desc src_desc_, dst_desc_;
  memory weights_;
  std::optional<memory> bias_;
  KernelInfo info_;
  DnnlStep step_;
};

}  // namespace

Tensor TransposedScaled(const Tensor& w, bool already_nk, float scale) {
  const int64_t r = w.shape()[0], cols = w.shape()[1];
  const float* src = w.data<float>();
  if (already_nk) {
    Tensor t(DataType::kFloat32, {r, cols});
    float* dst = t.data<float>();
    for (int64_t i = 0; i < r * cols; ++i) dst[i] = src[i] * scale;
    return t;
  }
  Tensor t(DataType::kFloat32, {cols, r});
  float* dst = t.data<float>();
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < cols; ++j) dst[j * r + i] = src[i * cols + j] * scale;
  }
  return t;
}

absl::StatusOr<std::unique_ptr<Kernel>> BuildDenseKernel(const OpContext& c,
                                                         DenseSpec spec) {
  return CatchDnnl(c.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    auto k = std::make_unique<DenseKernel>();
    const int64_t n = spec.weights_nk.shape()[0];
    const int64_t kdim = spec.weights_nk.shape()[1];
    k->out_shape_ = spec.out_shape;
    k->src_desc_ = PlainDesc({spec.m, kdim});
    k->dst_desc_ = PlainDesc({spec.m, n});
    memory::desc w_plain = PlainDesc({n, kdim});
    memory::desc w_any({n, kdim}, memory::data_type::f32, memory::format_tag::any);
    std::optional<dnnl::inner_product_forward::desc> desc;
    memory::desc b_desc;
    if (!spec.bias.empty()) {
      b_desc = PlainDesc({n});
      desc.emplace(dnnl::prop_kind::forward_inference, k->src_desc_, w_any, b_desc,
                   k->dst_desc_);
    } else {
      desc.emplace(dnnl::prop_kind::forward_inference, k->src_desc_, w_any,
                   k->dst_desc_);
    }
    std::vector<FusedActivation> activations = c.node.fused_activations;
    k->gelu_ = TakeTrailingGelu(activations);
    dnnl::inner_product_forward::primitive_desc pd(*desc, MakeAttr(activations), *c.engine);
    k->info_ = DescribePrimitive(pd);
    k->step_ = MakeStep<dnnl::inner_product_forward::primitive_desc,
                        dnnl::inner_product_forward>(pd);
    k->weights_ = c.weights->Get(spec.weight_key, spec.weights_nk, w_plain,
                                 pd.weights_desc());
    if (!spec.bias.empty()) {
      k->bias_ = c.weights->Get(spec.weight_key + "#bias", spec.bias, b_desc, b_desc);
    }
    return std::unique_ptr<Kernel>(std::move(k));
  });
}

}  // namespace qs
