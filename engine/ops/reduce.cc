// ReduceSum, ReduceMean, ReduceMax, ReduceMin on oneDNN reduction. Axes are
// an attribute, except ReduceSum's from opset 13 on: a constant second input
// (torch exports EmbeddingBag(mode="sum") with fixed-size bags as Gather +
// ReduceSum over the bag axis). keepdims defaults to 1; no axes reduces
// everything unless noop_with_empty_axes.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using dnnl::memory;

struct ReduceParams {
  Shape kept;  // the input shape with reduced dims set to 1
  Shape out;   // kept, or kept without the reduced dims (keepdims 0)
  bool noop = false;
};

absl::StatusOr<ReduceParams> ResolveReduce(const OpContext& c) {
  const Shape& x = c.in_shapes[0];
  const int64_t rank = static_cast<int64_t>(x.size());
  std::vector<int64_t> axes;
  if (c.node.op_type == "ReduceSum" && c.opset >= 13) {
    if (const Tensor* t = c.has_input(1) ? c.constant(1) : nullptr) {
      for (int64_t i = 0; i < t->num_elements(); ++i) axes.push_back(t->ScalarAsInt64(i));
    }
  } else {
    axes = c.node.GetInts("axes");
  }
  ReduceParams p;
  if (axes.empty()) {
    if (c.node.GetInt("noop_with_empty_axes", 0) != 0) {
      p.kept = p.out = x;
      p.noop = true;
      return p;
    }
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank || reduced[a < 0 ? a + rank : a]) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": axes entry ", a, " is out of range or repeated for rank ",
          rank));
    }
    reduced[a < 0 ? a + rank : a] = true;
  }
  const bool keep = c.node.GetInt("keepdims", 1) != 0;
  for (int64_t d = 0; d < rank; ++d) {
    p.kept.push_back(reduced[d] ? 1 : x[d]);
    if (!reduced[d] || keep) p.out.push_back(reduced[d] ? 1 : x[d]);
  }
  return p;
}

absl::StatusOr<std::vector<TypedShape>> InferReduce(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kFloat32) {  // input 1 (axes) is int64
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": input has type ", DataTypeName(c.in_dtypes[0]),
        "; this op supports float32 only"));
  }
  ASSIGN_OR_RETURN(ReduceParams p, ResolveReduce(c));
  if (NumElements(c.in_shapes[0]) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": empty input"));
  }
  return std::vector<TypedShape>{{DataType::kFloat32, p.out}};
}

dnnl::algorithm ReduceAlgorithm(const std::string& op) {
  if (op == "ReduceMax") return dnnl::algorithm::reduction_max;
  if (op == "ReduceMin") return dnnl::algorithm::reduction_min;
  if (op == "ReduceSum") return dnnl::algorithm::reduction_sum;
  return dnnl::algorithm::reduction_mean;
}

class ReduceKernel : public Kernel {
 public:
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    if (noop_) {
      out[0] = in[0];
      return absl::OkStatus();
    }
    out[0] = Tensor(DataType::kFloat32, out_shape_);
    step_.Execute({{DNNL_ARG_SRC, Wrap(src_desc_, in[0], ctx.engine())},
                   {DNNL_ARG_DST, Wrap(dst_desc_, out[0], ctx.engine())}},
                  ctx);
    ctx.stream().wait();
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(ReduceParams p, ResolveReduce(c));
    auto k = std::make_unique<ReduceKernel>();
    k->noop_ = p.noop;
    k->out_shape_ = p.out;
    if (p.noop) return std::unique_ptr<Kernel>(std::move(k));
    k->src_desc_ = PlainDesc(c.in_shapes[0]);
    k->dst_desc_ = PlainDesc(p.kept);
    dnnl::reduction::desc d(ReduceAlgorithm(c.node.op_type), k->src_desc_, k->dst_desc_, 0.f,
                            0.f);
    dnnl::reduction::primitive_desc pd(d, MakeAttr({}), *c.engine);
    k->step_ = MakeStep<dnnl::reduction::primitive_desc, dnnl::reduction>(pd);
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  bool noop_ = false;
  Shape out_shape_;
  memory::desc src_desc_, dst_desc_;
  DnnlStep step_;
};

}  // namespace

extern const OpDef kReduceSumOp = {"ReduceSum", 1, {1}, InferReduce, ReduceKernel::Build};
extern const OpDef kReduceMeanOp = {"ReduceMean", 1, {}, InferReduce, ReduceKernel::Build};
extern const OpDef kReduceMaxOp = {"ReduceMax", 1, {}, InferReduce, ReduceKernel::Build};
extern const OpDef kReduceMinOp = {"ReduceMin", 1, {}, InferReduce, ReduceKernel::Build};

}  // namespace qs
