#include "engine/quant/bit_packing.h"

namespace qs::quant {

int64_t PackedBytes(int64_t count, int bits) { return (count * bits + 7) / 8; }

void PackIndices(std::span<const uint8_t> indices, int bits, std::vector<uint8_t>& out) {
  const uint32_t mask = (1u << bits) - 1;
  // At most 7 pending bits + 8 new ones, so 32 bits never overflow.
  uint32_t acc = 0;
  int pending = 0;
  for (uint8_t idx : indices) {
    acc |= (idx & mask) << pending;
    pending += bits;
    while (pending >= 8) {
      out.push_back(static_cast<uint8_t>(acc & 0xFF));
      acc >>= 8;
      pending -= 8;
    }
  }
  if (pending > 0) out.push_back(static_cast<uint8_t>(acc & 0xFF));
}

void UnpackIndices(std::span<const uint8_t> packed, int bits, std::span<uint8_t> out) {
  const uint32_t mask = (1u << bits) - 1;
  uint32_t acc = 0;
  int available = 0;
  size_t next = 0;
  for (uint8_t& idx : out) {
    while (available < bits) {
      acc |= static_cast<uint32_t>(packed[next++]) << available;
      available += 8;
    }
    idx = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    available -= bits;
  }
}

}  // namespace qs::quant
