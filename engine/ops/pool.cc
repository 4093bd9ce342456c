// MaxPool, AveragePool and GlobalAveragePool on oneDNN pooling_v2
// (dilations, ceil_mode, count_include_pad).
#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/spatial.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

bool IsGlobal(const Node& n) { return n.op_type == "GlobalAveragePool"; }

absl::StatusOr<SpatialParams> PoolSpatial(const OpContext& c) {
  const Shape& x = c.in_shapes[0];
  // MaxPool also runs on int8 codes (it commutes with quantization), so
  // int8 tensors flow through it between quantized layers.
  const bool int8 = c.in_dtypes[0] == DataType::kUint8 || c.in_dtypes[0] == DataType::kInt8;
  if (!(int8 && c.node.op_type == "MaxPool")) RETURN_IF_ERROR(RequireFloatInputs(c));
  if (x.size() < 3 || x.size() > 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": input ", ShapeToString(x), " must be rank 3, 4 or 5"));
  }
  if (c.node.outputs.size() > 1 && !c.node.outputs[1].empty()) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": the Indices output is not supported"));
  }
  std::vector<int64_t> in(x.begin() + 2, x.end());
  if (IsGlobal(c.node)) {
    Node plain = c.node;  // no attributes: kernel = whole input, stride 1
    plain.attributes.clear();
    return ResolveSpatial(plain, in, in, false);
  }
  if (!c.node.HasAttr("kernel_shape")) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": kernel_shape is required"));
  }
  return ResolveSpatial(c.node, in, c.node.GetInts("kernel_shape"),
                        c.node.GetInt("ceil_mode", 0) != 0);
}

absl::StatusOr<std::vector<TypedShape>> InferPool(const OpContext& c) {
  ASSIGN_OR_RETURN(SpatialParams p, PoolSpatial(c));
  Shape out = {c.in_shapes[0][0], c.in_shapes[0][1]};
  out.insert(out.end(), p.out.begin(), p.out.end());
  return std::vector<TypedShape>{{c.in_dtypes[0], out}};
}

class PoolKernel : public Kernel {
 public:
  KernelInfo Info() const override { return DescribePrimitive(pd_); }
  memory::desc OutputLayout() const override { return dst_.OutputLayout(); }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    memory src = src_.Get(in[0], ctx, ScratchSlot::kSrc0);
    memory dst = dst_.Begin(out[0], ctx);
    step_.Execute({{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, ctx);
    dst_.Finish(dst, out[0], ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(SpatialParams p, PoolSpatial(c));
    auto k = std::make_unique<PoolKernel>();
    const Shape& out_shape = c.out_shapes[0];
    const memory::desc given = GivenLayout(c, 0);
    const memory::desc plain_out = PlainDesc(out_shape, c.in_dtypes[0]);
    const Shape& x = c.in_shapes[0];
    memory::dims dil(p.kernel.size()), pad_r(p.kernel.size());
    for (size_t i = 0; i < p.kernel.size(); ++i) {
      dil[i] = p.dilations[i] - 1;
      // oneDNN wants pads that reproduce the output size exactly (ceil_mode).
      const int64_t eff = (p.kernel[i] - 1) * p.dilations[i] + 1;
      pad_r[i] = std::max(p.pad_end[i],
                          (p.out[i] - 1) * p.strides[i] + eff - x[i + 2] - p.pad_begin[i]);
    }
    dnnl::algorithm alg = dnnl::algorithm::pooling_max;
    if (c.node.op_type != "MaxPool") {
      alg = c.node.GetInt("count_include_pad", 0) != 0
                ? dnnl::algorithm::pooling_avg_include_padding
                : dnnl::algorithm::pooling_avg_exclude_padding;
    }
    // oneDNN's fast pooling kernels want channel-blocked (f32) or
    // channels-last (int8) layouts; on plain NCHW int8 only the reference
    // kernel runs (≈25× slower here). Pool in the fast layout and reorder —
    // unless the input already arrives in a blocked layout (a conv's).
    memory::desc src_fast = given;
    if (x.size() == 4 && c.in_layout(0) == memory::desc()) {
      const bool int8 = c.in_dtypes[0] != DataType::kFloat32;
      src_fast = memory::desc(x, ToDnnl(c.in_dtypes[0]),
                              int8 ? memory::format_tag::acdb : memory::format_tag::aBcd8b);
    }
    memory::desc dst_any(out_shape, ToDnnl(c.in_dtypes[0]), memory::format_tag::any);
    // A blocked source of any rank (a 1-D conv's output) pools into a
    // blocked destination: oneDNN's kernels want the two alike.
    const bool blocked = x.size() == 4 || c.in_layout(0) != memory::desc();
    dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_fast,
                                     blocked ? dst_any : plain_out, p.strides,
                                     p.kernel, dil, p.pad_begin, pad_r);
    k->pd_ = dnnl::pooling_v2_forward::primitive_desc(d, MakeAttr({}), *c.engine);
    k->step_ = MakeStep<dnnl::pooling_v2_forward::primitive_desc,
                        dnnl::pooling_v2_forward>(k->pd_);
    k->src_ = LayoutIn(given, k->pd_.src_desc(), *c.engine);
    k->dst_ = LayoutOut(k->pd_.dst_desc(), c.in_dtypes[0], out_shape, c.out_layout_free,
                        *c.engine);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  LayoutIn src_;
  LayoutOut dst_;
  dnnl::pooling_v2_forward::primitive_desc pd_;
  DnnlStep step_;
};

}  // namespace

extern const OpDef kMaxPoolOp = {"MaxPool", 1, {}, InferPool, PoolKernel::Build, "", false, {0}};
extern const OpDef kAveragePoolOp = {
    "AveragePool", 7, {}, InferPool, PoolKernel::Build, "", false, {0}};
extern const OpDef kGlobalAveragePoolOp = {
    "GlobalAveragePool", 1, {}, InferPool, PoolKernel::Build, "", false, {0}};

}  // namespace qs
