// ONNX ReduceSum on float32: axes come from the `axes` attribute before
// opset 13 and from a constant second input from 13 on (absent = all axes,
// or a no-op with noop_with_empty_axes). keepdims (default 1) keeps reduced
// dims as 1. torch exports the pooling of EmbeddingBag(mode="sum") with
// fixed-size bags as Gather + ReduceSum over the bag axis.
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

// Which input dims are reduced.
absl::StatusOr<std::vector<bool>> ReducedAxes(const OpContext& c) {
  const int64_t rank = static_cast<int64_t>(c.in_shapes[0].size());
  std::vector<int64_t> axes;
  if (c.opset >= 13) {
    if (const Tensor* t = c.constant(1)) {
      for (int64_t i = 0; i < t->num_elements(); ++i) axes.push_back(t->ScalarAsInt64(i));
    }
  } else {
    axes = c.node.GetInts("axes", {});
  }
  const bool noop = c.node.GetInt("noop_with_empty_axes", 0) != 0;
  std::vector<bool> reduced(rank, axes.empty() && !noop);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank || reduced[a < 0 ? a + rank : a]) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": axes entry ", a,
          " is out of range or repeated for rank ", rank));
    }
    reduced[a < 0 ? a + rank : a] = true;
  }
  return reduced;
}

absl::StatusOr<std::vector<TypedShape>> InferReduceSum(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kFloat32) {
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": input has type ", DataTypeName(c.in_dtypes[0]),
        "; ReduceSum supports float32 only"));
  }
  ASSIGN_OR_RETURN(std::vector<bool> reduced, ReducedAxes(c));
  const bool keep = c.node.GetInt("keepdims", 1) != 0;
  Shape out;
  for (size_t d = 0; d < reduced.size(); ++d) {
    if (!reduced[d]) out.push_back(c.in_shapes[0][d]);
    else if (keep) out.push_back(1);
  }
  return std::vector<TypedShape>{{DataType::kFloat32, out}};
}

class ReduceSumKernel : public Kernel {
 public:
  ReduceSumKernel(Shape in_shape, Shape out_shape, std::vector<int64_t> out_strides)
      : in_(std::move(in_shape)), out_(std::move(out_shape)),
        out_strides_(std::move(out_strides)) {}

  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(DataType::kFloat32, out_);
    const float* src = in[0].data<float>();
    float* dst = out[0].data<float>();
    const int64_t total = in[0].num_elements();
    const size_t rank = in_.size();
    // Walk the input in order; the output offset moves by out_strides_
    // (0 along reduced dims), like an odometer.
    std::vector<int64_t> idx(rank, 0);
    int64_t offset = 0;
    for (int64_t n = 0; n < total; ++n) {
      dst[offset] += src[n];
      for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
        if (++idx[d] < in_[d]) {
          offset += out_strides_[d];
          break;
        }
        offset -= out_strides_[d] * (in_[d] - 1);
        idx[d] = 0;
      }
    }
    return absl::OkStatus();
  }

 private:
  Shape in_, out_;
  std::vector<int64_t> out_strides_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildReduceSum(const OpContext& c) {
  ASSIGN_OR_RETURN(std::vector<bool> reduced, ReducedAxes(c));
  const Shape& x = c.in_shapes[0];
  std::vector<int64_t> strides(x.size(), 0);
  int64_t stride = 1;
  for (int d = static_cast<int>(x.size()) - 1; d >= 0; --d) {
    if (reduced[d]) continue;
    strides[d] = stride;
    stride *= x[d];
  }
  return std::unique_ptr<Kernel>(new ReduceSumKernel(x, c.out_shapes[0], strides));
}

}  // namespace

extern const OpDef kReduceSumOp = {"ReduceSum", 1, {1}, InferReduceSum, BuildReduceSum};

}  // namespace qs
