// LayerNormalization (ONNX opset 17; also what passes/fuse_layer_norm.cc
// makes of torch's decomposed ReduceMean/Sub/Pow/Sqrt/Div pattern) on
// oneDNN layer_normalization: y = (x - mean) / sqrt(var + epsilon) · scale +
// bias over the dims from `axis` on. The Mean / InvStdDev outputs are not
// supported (training only).
#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/shape_util.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

// [rows, cols]: the input flattened at `axis`.
absl::StatusOr<std::pair<int64_t, int64_t>> RowsCols(const OpContext& c) {
  const Shape& x = c.in_shapes[0];
  const int64_t rank = static_cast<int64_t>(x.size());
  ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(c, c.node.GetInt("axis", -1), rank, false));
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? rows : cols) *= x[d];
  return std::make_pair(rows, cols);
}

absl::StatusOr<std::vector<TypedShape>> InferLayerNorm(const OpContext& c) {
  RETURN_IF_ERROR(RequireFloatInputs(c));
  ASSIGN_OR_RETURN(auto rc, RowsCols(c));
  for (size_t i = 1; i <= 2; ++i) {
    if (c.has_input(i) && NumElements(c.in_shapes[i]) != rc.second) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": ", i == 1 ? "scale" : "bias", " has ",
          NumElements(c.in_shapes[i]), " elements; the normalized dims have ", rc.second));
    }
  }
  if (!c.has_input(1)) {
    return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": needs a scale"));
  }
  return std::vector<TypedShape>{{DataType::kFloat32, c.in_shapes[0]}};
}

class LayerNormKernel : public Kernel {
 public:
  KernelInfo Info() const override { return info_; }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    out[0] = Tensor::Uninitialized(DataType::kFloat32, in[0].shape());
    if (in[0].num_elements() == 0) return absl::OkStatus();
    const auto& eng = ctx.engine();
    step_.Execute({{DNNL_ARG_SRC, Wrap(desc_, in[0], eng)},
                   {DNNL_ARG_DST, Wrap(desc_, out[0], eng)},
                   {DNNL_ARG_SCALE, Wrap(channel_desc_, scale_, eng)},
                   {DNNL_ARG_SHIFT, Wrap(channel_desc_, shift_, eng)}},
                  ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(auto rc, RowsCols(c));
    auto k = std::make_unique<LayerNormKernel>();
    if (rc.first * rc.second == 0) return std::unique_ptr<Kernel>(std::move(k));
    k->desc_ = PlainDesc({rc.first, rc.second});
    k->channel_desc_ = PlainDesc({rc.second});
    // Scale and bias are usually constants; a run-time one is read per run.
    if (c.constant(1) == nullptr || (c.has_input(2) && c.constant(2) == nullptr)) {
      return absl::UnimplementedError(
          absl::StrCat(c.node.Describe(), ": scale and bias must be constants"));
    }
    k->scale_ = c.constant(1)->Reshaped({rc.second});
    k->shift_ = c.has_input(2) ? c.constant(2)->Reshaped({rc.second})
                               : Tensor(DataType::kFloat32, {rc.second});
    dnnl::layer_normalization_forward::desc d(
        dnnl::prop_kind::forward_inference, k->desc_, c.node.GetFloat("epsilon", 1e-5f),
        dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift);
    dnnl::layer_normalization_forward::primitive_desc pd(d, MakeAttr({}), *c.engine);
    k->info_ = KernelInfo{pd.impl_info_str(), "f32", "f32", "f32"};
    k->step_ = MakeStep<dnnl::layer_normalization_forward::primitive_desc,
                        dnnl::layer_normalization_forward>(pd);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  memory::desc desc_, channel_desc_;
  Tensor scale_, shift_;
  KernelInfo info_;
  DnnlStep step_;
};

}  // namespace

extern const OpDef kLayerNormalizationOp = {"LayerNormalization", 17, {1, 2}, InferLayerNorm,
                                            LayerNormKernel::Build};

}  // namespace qs
