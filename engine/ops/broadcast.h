// NumPy-style (multidirectional) broadcasting helpers.
#pragma once

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs {

// The broadcast shape of a and b, or an error naming both shapes.
absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b);
// `shape` left-padded with 1s to `rank`.
Shape PadLeft(const Shape& shape, size_t rank);
// dst = scale · broadcast(src); src's shape must broadcast to dst's.
void BroadcastInto(const Tensor& src, const Shape& src_shape, float scale, Tensor& dst);

}  // namespace qs
