// Output-size and padding arithmetic shared by Conv and the pooling ops,
// following the ONNX spec for `auto_pad`, `pads`, `strides`, `dilations`
// and `ceil_mode`.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/tensor.h"

namespace qs {

struct SpatialParams {
  std::vector<int64_t> kernel, strides, dilations;  // ONNX dilations (>= 1)
  std::vector<int64_t> pad_begin, pad_end;          // resolved explicit pads
  std::vector<int64_t> out;                         // output spatial dims
};

// `in` are the input spatial dims; `kernel` the kernel spatial dims.
absl::StatusOr<SpatialParams> ResolveSpatial(const Node& node,
                                             const std::vector<int64_t>& in,
                                             const std::vector<int64_t>& kernel,
                                             bool ceil_mode);

}  // namespace qs
