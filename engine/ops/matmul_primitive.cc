#include "engine/ops/matmul_primitive.h"

#include "engine/ops/broadcast.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/gelu.h"

namespace qs {
namespace {

using dnnl::memory;

class MatmulKernel : public Kernel {
 public:
  KernelInfo Info() const override { return info_; }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    // The product overwrites every element unless C is accumulated onto it
    // or the inner dimension is empty (a sum of nothing is 0; oneDNN may
    // then not run at all).
    const bool zeroed = spec_.c_input >= 0 || spec_.a_dims.back() == 0;
    Tensor dst_t = zeroed ? Tensor(DataType::kFloat32, spec_.dst_dims)
                          : Tensor::Uninitialized(DataType::kFloat32, spec_.dst_dims);
    if (spec_.c_input >= 0) {
      BroadcastInto(in[spec_.c_input], spec_.c_shape, spec_.beta, dst_t);
    }
    const auto& eng = ctx.engine();
    memory a = Wrap(a_desc_, in[0], eng);
    memory b = Wrap(b_desc_, in[1], eng);
    memory dst = Wrap(dst_desc_, dst_t, eng);
    step_.Execute({{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, dst}},
                  ctx);
    ctx.stream().wait();
    if (gelu_) GeluErfInPlace(dst_t.data<float>(), dst_t.num_elements());
    out[0] = dst_t.Reshaped(spec_.out_shape);
    return absl::OkStatus();
  }

  bool gelu_ = false;
  MatmulSpec spec_;
  memory::desc a_desc_, b_desc_, dst_desc_;
  KernelInfo info_;
  DnnlStep step_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> BuildMatmulKernel(const OpContext& c,
                                                          MatmulSpec spec) {
  return CatchDnnl(c.node, [&]() -> absl::StatusOr<std::unique_ptr<Kernel>> {
    auto k = std::make_unique<MatmulKernel>();
    k->a_desc_ = memory::desc(spec.a_dims, memory::data_type::f32, spec.a_strides);
    k->b_desc_ = memory::desc(spec.b_dims, memory::data_type::f32, spec.b_strides);
    k->dst_desc_ = spec.dst_strides.empty()
                       ? PlainDesc(spec.dst_dims)
                       : memory::desc(spec.dst_dims, memory::data_type::f32, spec.dst_strides);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (spec.alpha != 1.f) attr.set_output_scales(0, {spec.alpha});
    dnnl::post_ops ops;
    if (spec.c_input >= 0) ops.append_sum(1.f);
    std::vector<FusedActivation> activations = c.node.fused_activations;
    k->gelu_ = TakeTrailingGelu(activations);
    dnnl::primitive_attr act = MakeAttr(activations);
    dnnl::post_ops act_ops = act.get_post_ops();
    for (int i = 0; i < act_ops.len(); ++i) {
      dnnl::algorithm alg;
      float scale, alpha, beta;
      act_ops.get_params_eltwise(i, scale, alg, alpha, beta);
      ops.append_eltwise(scale, alg, alpha, beta);
    }
    attr.set_post_ops(ops);
    dnnl::matmul::desc desc(k->a_desc_, k->b_desc_, k->dst_desc_);
    dnnl::matmul::primitive_desc pd(desc, attr, *c.engine);
    k->info_ = DescribePrimitive(pd);
    k->step_ = MakeStep<dnnl::matmul::primitive_desc, dnnl::matmul>(pd);
    k->spec_ = std::move(spec);
    return std::unique_ptr<Kernel>(std::move(k));
  });
}

}  // namespace qs
