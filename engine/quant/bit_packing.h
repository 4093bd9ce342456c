// LSB-first bit packing of small unsigned indices (1..8 bits each).
//
// Index i of a run occupies bits [i*bits, (i+1)*bits) of a little-endian bit
// stream (stream bit j = bit j%8 of byte j/8). For 1/2/4/8 bits this is the
// familiar "eight/four/two/one per byte, low bits first" layout; other widths
// straddle byte boundaries so no bits are wasted.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qs::quant {

// Bytes needed for `count` indices of `bits` bits: ceil(count * bits / 8).
int64_t PackedBytes(int64_t count, int bits);

// Appends PackedBytes(indices.size(), bits) bytes to `out`. Each index must be
// < 2^bits (higher bits are masked off).
void PackIndices(std::span<const uint8_t> indices, int bits, std::vector<uint8_t>& out);

// Reads out.size() indices from the start of `packed`, which must hold at least
// PackedBytes(out.size(), bits) bytes.
void UnpackIndices(std::span<const uint8_t> packed, int bits, std::span<uint8_t> out);

}  // namespace qs::quant
