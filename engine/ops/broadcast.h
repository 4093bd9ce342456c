// NumPy-style (multidirectional) broadcasting helpers.
#pragma once

#include <array>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs {

// The broadcast shape of a and b, or an error naming both shapes.
absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b);
// `shape` left-padded with 1s to `rank`.
Shape PadLeft(const Shape& shape, size_t rank);
// dst = scale · broadcast(src); src's shape must broadcast to dst's.
void BroadcastInto(const Tensor& src, const Shape& src_shape, float scale, Tensor& dst);

// Row-major strides of `shape` left-padded to `rank`, 0 along dims of size 1
// (so a broadcast dim re-reads the same elements).
std::vector<int64_t> BroadcastStrides(const Shape& shape, size_t rank);

// Calls fn(n, offsets) for every element n of a tensor of shape `out` in
// row-major order, where offsets[i] is the matching element of input i
// (given by its BroadcastStrides for out's rank).
template <size_t N, typename Fn>
void ForEachBroadcast(const Shape& out, const std::array<std::vector<int64_t>, N>& strides,
                      Fn&& fn) {
  const size_t rank = out.size();
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, N> off{};
  const int64_t total = NumElements(out);
  for (int64_t n = 0; n < total; ++n) {
    fn(n, off);
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      if (++idx[d] < out[d]) {
        for (size_t i = 0; i < N; ++i) off[i] += strides[i][d];
        break;
      }
      for (size_t i = 0; i < N; ++i) off[i] -= strides[i][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

// out[n] = fn(a[..], b[..]) with NumPy broadcasting; `out` already has the
// broadcast shape. A plain loop, for small (shape) tensors and non-float types.
template <typename T, typename R, typename Fn>
void BroadcastBinary(const Tensor& a, const Tensor& b, Tensor& out, Fn&& fn) {
  const size_t rank = out.shape().size();
  const std::array<std::vector<int64_t>, 2> strides = {BroadcastStrides(a.shape(), rank),
                                                       BroadcastStrides(b.shape(), rank)};
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.data<R>();
  ForEachBroadcast(out.shape(), strides, [&](int64_t n, const std::array<int64_t, 2>& off) {
    po[n] = fn(pa[off[0]], pb[off[1]]);
  });
}

}  // namespace qs
