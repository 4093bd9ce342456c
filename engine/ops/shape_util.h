// Helpers shared by the layout ops (shape_ops.cc, squeeze.cc, slice.cc, ...).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "engine/kernel.h"

namespace qs {

// `axis` in [-rank, rank) (or [-rank, rank] with inclusive_end), made
// non-negative; the error names the node.
absl::StatusOr<int64_t> NormalizeAxis(const OpContext& c, int64_t axis, int64_t rank,
                                      bool inclusive_end);

// A kernel whose output is its input's buffer under the inferred output
// shape (reshape-like ops: no copy).
absl::StatusOr<std::unique_ptr<Kernel>> BuildAlias(const OpContext& c);

}  // namespace qs
