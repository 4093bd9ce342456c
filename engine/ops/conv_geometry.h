// Conv geometry shared by the fp32 Conv and the int8 QConv kernels:
// validates input/weight/bias shapes and the group count, and resolves pads,
// strides and dilations into output spatial dims.
#pragma once

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/ops/spatial.h"

namespace qs {

// x: [N, C, spatial...]; w: [M, C/group, kernel...]; bias: [M] or nullptr.
absl::StatusOr<SpatialParams> ConvGeometry(const Node& node, const Shape& x, const Shape& w,
                                          const Shape* bias);

}  // namespace qs
