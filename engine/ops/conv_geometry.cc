#include "engine/ops/conv_geometry.h"

#include "absl/strings/str_cat.h"

namespace qs {

absl::StatusOr<SpatialParams> ConvGeometry(const Node& node, const Shape& x, const Shape& w,
                                          const Shape* bias) {
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": input ", ShapeToString(x), " and weights ",
        ShapeToString(w), " must both be rank 3, 4 or 5"));
  }
  const int64_t group = node.GetInt("group", 1);
  if (group < 1 || x[1] % group != 0 || w[0] % group != 0 || w[1] * group != x[1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": input channels ", x[1], ", weight shape ",
        ShapeToString(w), " and group ", group, " are inconsistent"));
  }
  if (bias != nullptr && (bias->size() != 1 || (*bias)[0] != w[0])) {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": bias shape ", ShapeToString(*bias),
        " must be [", w[0], "]"));
  }
  std::vector<int64_t> in(x.begin() + 2, x.end());
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  std::vector<int64_t> declared = node.GetInts("kernel_shape", kernel);
  if (declared != kernel) {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": kernel_shape attribute disagrees with the weights ",
        ShapeToString(w)));
  }
  return ResolveSpatial(node, in, kernel, /*ceil_mode=*/false);
}

}  // namespace qs
