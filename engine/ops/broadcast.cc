#include "engine/ops/broadcast.h"

#include "absl/strings/str_cat.h"

namespace qs {

Shape PadLeft(const Shape& shape, size_t rank) {
  Shape out(rank - std::min(rank, shape.size()), 1);
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape pa = PadLeft(a, rank), pb = PadLeft(b, rank), out(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (pa[i] == pb[i] || pb[i] == 1) {
      out[i] = pa[i];
    } else if (pa[i] == 1) {
      out[i] = pb[i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "shapes ", ShapeToString(a), " and ", ShapeToString(b),
          " cannot be broadcast together"));
    }
  }
  return out;
}

std::vector<int64_t> BroadcastStrides(const Shape& shape, size_t rank) {
  Shape s = PadLeft(shape, rank);
  std::vector<int64_t> stride(rank, 0);
  int64_t acc = 1;
  for (int i = static_cast<int>(rank) - 1; i >= 0; --i) {
    stride[i] = s[i] == 1 ? 0 : acc;
    acc *= s[i];
  }
  return stride;
}

void BroadcastInto(const Tensor& src, const Shape& src_shape, float scale,
                   Tensor& dst) {
  const std::array<std::vector<int64_t>, 1> strides = {
      BroadcastStrides(src_shape, dst.shape().size())};
  const float* in = src.data<float>();
  float* o = dst.data<float>();
  ForEachBroadcast(dst.shape(), strides,
                   [&](int64_t n, const std::array<int64_t, 1>& off) { o[n] = scale * in[off[0]]; });
}

}  // namespace qs
