// Slice (opset 10+: starts, ends, axes, steps as constant inputs; opset 1-9:
// attributes). Type-agnostic, so it runs on int64 shape tensors too.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/ops/broadcast.h"
#include "engine/ops/element_copy.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

struct SliceParams {
  Shape out;
  std::vector<int64_t> start, step;  // per input dim
};

absl::StatusOr<std::vector<int64_t>> IntsInput(const OpContext& c, size_t i) {
  const Tensor* t = c.constant(i);
  if (t == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": input ", i, " must be a constant"));
  }
  std::vector<int64_t> v;
  for (int64_t k = 0; k < t->num_elements(); ++k) v.push_back(t->ScalarAsInt64(k));
  return v;
}

absl::StatusOr<SliceParams> ResolveSlice(const OpContext& c) {
  const Shape& x = c.in_shapes[0];
  const int64_t rank = static_cast<int64_t>(x.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset < 10) {
    starts = c.node.GetInts("starts");
    ends = c.node.GetInts("ends");
    axes = c.node.GetInts("axes");
  } else {
    ASSIGN_OR_RETURN(starts, IntsInput(c, 1));
    ASSIGN_OR_RETURN(ends, IntsInput(c, 2));
    if (c.has_input(3)) {
      ASSIGN_OR_RETURN(axes, IntsInput(c, 3));
    }
    if (c.has_input(4)) {
      ASSIGN_OR_RETURN(steps, IntsInput(c, 4));
    }
  }
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": starts, ends, axes and steps differ in length"));
  }
  SliceParams p{x, std::vector<int64_t>(rank, 0), std::vector<int64_t>(rank, 1)};
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank || seen[a]) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": bad or repeated axis ", axes[i]));
    }
    seen[a] = true;
    const int64_t dim = x[a], step = steps[i];
    if (step == 0) {
      return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": step 0"));
    }
    // ONNX clamping: [0, dim] for positive steps, [-1, dim-1] for negative.
    auto clamp = [&](int64_t v) {
      if (v < 0) v = v < std::numeric_limits<int64_t>::min() + dim ? -1 : v + dim;
      return step > 0 ? std::clamp<int64_t>(v, 0, dim) : std::clamp<int64_t>(v, -1, dim - 1);
    };
    const int64_t s = clamp(starts[i]), e = clamp(ends[i]);
    const int64_t n = step > 0 ? (e - s + step - 1) / step : (s - e - step - 1) / -step;
    p.out[a] = std::max<int64_t>(n, 0);
    p.start[a] = s;
    p.step[a] = step;
  }
  return p;
}

absl::StatusOr<std::vector<TypedShape>> InferSlice(const OpContext& c) {
  ASSIGN_OR_RETURN(SliceParams p, ResolveSlice(c));
  return std::vector<TypedShape>{{c.in_dtypes[0], p.out}};
}

class SliceKernel : public Kernel {
 public:
  SliceKernel(SliceParams p, Shape in) : p_(std::move(p)), in_(std::move(in)) {}

  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(in[0].dtype(), p_.out);
    const size_t rank = p_.out.size();
    std::vector<int64_t> in_strides(rank, 1);
    for (int d = static_cast<int>(rank) - 2; d >= 0; --d) {
      in_strides[d] = in_strides[d + 1] * in_[d + 1];
    }
    int64_t base = 0;
    std::array<std::vector<int64_t>, 1> stride = {std::vector<int64_t>(rank)};
    for (size_t d = 0; d < rank; ++d) {
      base += p_.start[d] * in_strides[d];
      stride[0][d] = p_.step[d] * in_strides[d];
    }
    WithElementType(in[0].dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* src = in[0].data<T>() + base;
      T* dst = out[0].data<T>();
      ForEachBroadcast(p_.out, stride, [&](int64_t n, const std::array<int64_t, 1>& off) {
        dst[n] = src[off[0]];
      });
    });
    return absl::OkStatus();
  }

 private:
  SliceParams p_;
  Shape in_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildSlice(const OpContext& c) {
  ASSIGN_OR_RETURN(SliceParams p, ResolveSlice(c));
  return std::unique_ptr<Kernel>(new SliceKernel(std::move(p), c.in_shapes[0]));
}

}  // namespace

extern const OpDef kSliceOp = {"Slice", 1, {1, 2, 3, 4}, InferSlice, BuildSlice};

}  // namespace qs
