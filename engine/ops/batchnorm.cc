// Inference-mode BatchNormalization on oneDNN (global statistics). Usually
// folded into the preceding Conv/Gemm by passes/fold_batchnorm.cc; this
// kernel serves the ones that cannot be folded.
#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

absl::StatusOr<std::vector<TypedShape>> InferBatchNorm(const OpContext& c) {
  const Shape& x = c.in_shapes[0];
  if (c.node.GetInt("training_mode", 0) != 0 ||
      (c.node.outputs.size() > 1 && !c.node.outputs[1].empty())) {
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": training mode (running statistics outputs) is "
                           "not supported; export the model in eval mode"));
  }
  if (x.size() < 2 || c.num_inputs() != 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": needs X of rank >= 2 and scale, B, mean, var"));
  }
  for (size_t i = 1; i < 5; ++i) {
    if (c.in_shapes[i] != Shape{x[1]}) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": input ", i, " has shape ", ShapeToString(c.in_shapes[i]),
          ", expected [", x[1], "] (one per channel)"));
    }
  }
  return std::vector<TypedShape>{{DataType::kFloat32, x}};
}

class BatchNormKernel : public Kernel {
 public:
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    out[0] = Tensor::Uninitialized(DataType::kFloat32, in[0].shape());
    if (in[0].num_elements() == 0) return absl::OkStatus();
    const auto& eng = ctx.engine();
    step_.Execute({{DNNL_ARG_SRC, Wrap(x_desc_, in[0], eng)},
                   {DNNL_ARG_SCALE, Wrap(c_desc_, in[1], eng)},
                   {DNNL_ARG_SHIFT, Wrap(c_desc_, in[2], eng)},
                   {DNNL_ARG_MEAN, Wrap(c_desc_, in[3], eng)},
                   {DNNL_ARG_VARIANCE, Wrap(c_desc_, in[4], eng)},
                   {DNNL_ARG_DST, Wrap(x_desc_, out[0], eng)}},
                  ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    auto k = std::make_unique<BatchNormKernel>();
    Shape x = c.in_shapes[0];
    if (NumElements(x) == 0) return std::unique_ptr<Kernel>(std::move(k));
    k->x_desc_ = PlainDesc(x);
    k->c_desc_ = PlainDesc({x[1]});
    dnnl::batch_normalization_forward::desc d(
        dnnl::prop_kind::forward_inference, k->x_desc_,
        c.node.GetFloat("epsilon", 1e-5f),
        dnnl::normalization_flags::use_global_stats |
            dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift);
    dnnl::batch_normalization_forward::primitive_desc pd(
        d, MakeAttr(c.node.fused_activations), *c.engine);
    k->step_ = MakeStep<dnnl::batch_normalization_forward::primitive_desc,
                        dnnl::batch_normalization_forward>(pd);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  memory::desc x_desc_, c_desc_;
  DnnlStep step_;
};

}  // namespace

extern const OpDef kBatchNormalizationOp = {"BatchNormalization", 7, {}, InferBatchNorm,
                                     BatchNormKernel::Build};

}  // namespace qs
