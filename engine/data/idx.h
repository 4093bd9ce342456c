// IDX reader: the format of MNIST / Fashion-MNIST, plain or gzip-compressed.
//
// Layout: bytes 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 dims,
// then the row-major big-endian payload. Types: 0x08 -> kUint8,
// 0x09 -> kInt8, 0x0C -> kInt32, 0x0D -> kFloat32.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs {

// Largest element count ReadIdx accepts (2^33); bigger headers are rejected
// as ResourceExhausted before anything is allocated.
inline constexpr uint64_t kMaxIdxElements = uint64_t{1} << 33;

// Reads an IDX file; gzip is detected from the content, not the file name.
// Errors: NotFound (cannot open), InvalidArgument (bad magic, ndims outside
// 1..8, payload shorter or longer than the dims imply, corrupt gzip),
// Unimplemented (int16/float64 IDX), ResourceExhausted (absurd dims).
absl::StatusOr<Tensor> ReadIdx(const std::string& path);

}  // namespace qs
