// NumPy .npy reader (format versions 1.0, 2.0, 3.0) and writer (1.0).
//
// Supported dtypes: '<f4' (float32), '<f8' (float64, kept as kFloat64),
// '|u1', '|i1', '<i4', '<i8', '|b1'. C order only; fortran_order True is
// rejected as Unimplemented. Shape () yields a rank-0 tensor.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs {

// Reads a .npy file. NotFound if it cannot be opened; InvalidArgument for a
// malformed header or a data section whose size does not match the shape.
absl::StatusOr<Tensor> ReadNpy(const std::string& path);

// Parses the bytes of a whole .npy file. `what` names the source in error
// messages (e.g. the file path).
absl::StatusOr<Tensor> ReadNpyBytes(const std::string& bytes,
                                    const std::string& what);

// Writes version 1.0; the header is space-padded so the data start at a
// multiple of 64 bytes, as numpy itself does.
absl::Status WriteNpy(const std::string& path, const Tensor& t);

}  // namespace qs
