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

void BroadcastInto(const Tensor& src, const Shape& src_shape, float scale,
                   Tensor& dst) {
  const Shape& out = dst.shape();
  const size_t rank = out.size();
  Shape s = PadLeft(src_shape, rank);
  // Strides of src in dst's index space (0 along broadcast dims).
  std::vector<int64_t> stride(rank, 0);
  int64_t acc = 1;
  for (int i = static_cast<int>(rank) - 1; i >= 0; --i) {
    stride[i] = s[i] == 1 ? 0 : acc;
    acc *= s[i];
  }
  const float* in = src.data<float>();
  float* o = dst.data<float>();
  std::vector<int64_t> idx(rank, 0);
  const int64_t total = dst.num_elements();
  int64_t offset = 0;
  for (int64_t n = 0; n < total; ++n) {
    o[n] = scale * in[offset];
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      if (++idx[d] < out[d]) {
        offset += stride[d];
        break;
      }
      offset -= stride[d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace qs
