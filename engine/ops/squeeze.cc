// Unsqueeze and Squeeze: reshape-like, they alias their input. The axes are
// an attribute before opset 13 and a constant input from 13.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/shape_util.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

// The axes (attribute or constant input 1); `present` is false when absent.
absl::StatusOr<std::vector<int64_t>> Axes(const OpContext& c, bool* present) {
  *present = true;
  if (c.opset < 13 || !c.has_input(1)) {
    *present = c.node.HasAttr("axes");
    return c.node.GetInts("axes");
  }
  const Tensor* t = c.constant(1);
  if (t == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": axes must be a constant"));
  }
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < t->num_elements(); ++i) axes.push_back(t->ScalarAsInt64(i));
  return axes;
}

absl::Status NormalizeAxes(const OpContext& c, int64_t rank, std::vector<int64_t>& axes) {
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": axis ", a, " is out of range for rank ", rank));
    }
    if (a < 0) a += rank;
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
    return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": repeated axis"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TypedShape>> InferUnsqueeze(const OpContext& c) {
  bool present = false;
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, Axes(c, &present));
  const Shape& x = c.in_shapes[0];
  const int64_t rank = static_cast<int64_t>(x.size() + axes.size());
  RETURN_IF_ERROR(NormalizeAxes(c, rank, axes));
  Shape out;
  size_t next_in = 0, next_axis = 0;
  for (int64_t d = 0; d < rank; ++d) {
    if (next_axis < axes.size() && axes[next_axis] == d) {
      out.push_back(1);
      ++next_axis;
    } else {
      out.push_back(x[next_in++]);
    }
  }
  return std::vector<TypedShape>{{c.in_dtypes[0], out}};
}

absl::StatusOr<std::vector<TypedShape>> InferSqueeze(const OpContext& c) {
  bool present = false;
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, Axes(c, &present));
  const Shape& x = c.in_shapes[0];
  const int64_t rank = static_cast<int64_t>(x.size());
  RETURN_IF_ERROR(NormalizeAxes(c, rank, axes));
  Shape out;
  for (int64_t d = 0; d < rank; ++d) {
    const bool listed = std::binary_search(axes.begin(), axes.end(), d);
    if (listed && x[d] != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": cannot squeeze axis ", d, " of size ", x[d]));
    }
    if (listed || (!present && x[d] == 1)) continue;
    out.push_back(x[d]);
  }
  return std::vector<TypedShape>{{c.in_dtypes[0], out}};
}

}  // namespace

extern const OpDef kUnsqueezeOp = {"Unsqueeze", 1, {1}, InferUnsqueeze, BuildAlias};
extern const OpDef kSqueezeOp = {"Squeeze", 1, {1}, InferSqueeze, BuildAlias};

}  // namespace qs
