// Softmax on oneDNN. Before opset 13 the input is coerced to 2-D at `axis`
// (default 1); from 13 the softmax runs along `axis` (default -1).
#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

absl::StatusOr<int64_t> SoftmaxAxis(const OpContext& c) {
  const int64_t rank = static_cast<int64_t>(c.in_shapes[0].size());
  int64_t axis = c.node.GetInt("axis", c.opset >= 13 ? -1 : 1);
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": axis ", axis, " is out of range for rank ", rank));
  }
  return axis < 0 ? axis + rank : axis;
}

absl::StatusOr<std::vector<TypedShape>> InferSoftmax(const OpContext& c) {
  RETURN_IF_ERROR(SoftmaxAxis(c).status());
  if (c.in_dtypes[0] != DataType::kFloat32) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": only float32 is supported"));
  }
  return std::vector<TypedShape>{{DataType::kFloat32, c.in_shapes[0]}};
}

class SoftmaxKernel : public Kernel {
 public:
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    out[0] = Tensor::Uninitialized(DataType::kFloat32, in[0].shape());
    if (in[0].num_elements() == 0) return absl::OkStatus();
    step_.Execute({{DNNL_ARG_SRC, Wrap(desc_, in[0], ctx.engine())},
                   {DNNL_ARG_DST, Wrap(desc_, out[0], ctx.engine())}},
                  ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(int64_t axis, SoftmaxAxis(c));
    auto k = std::make_unique<SoftmaxKernel>();
    const Shape& x = c.in_shapes[0];
    if (NumElements(x) == 0) return std::unique_ptr<Kernel>(std::move(k));
    Shape dims = x;
    int softmax_axis = static_cast<int>(axis);
    if (c.opset < 13) {
      int64_t outer = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= x[i];
      dims = {outer, NumElements(x) / outer};
      softmax_axis = 1;
    }
    if (dims.empty()) dims = {1};
    k->desc_ = PlainDesc(dims);
    dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, k->desc_,
                                  softmax_axis);
    dnnl::softmax_forward::primitive_desc pd(d, MakeAttr({}), *c.engine);
    k->step_ = MakeStep<dnnl::softmax_forward::primitive_desc, dnnl::softmax_forward>(pd);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  memory::desc desc_;
  DnnlStep step_;
};

}  // namespace

extern const OpDef kSoftmaxOp = {"Softmax", 1, {}, InferSoftmax, SoftmaxKernel::Build};

}  // namespace qs
