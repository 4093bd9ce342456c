#include "engine/ops/rowwise_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace qs {

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
  if (exp == 0x1f) {
    x = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    x = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    x = sign;
  } else {  // subnormal: normalize
    int e = -1;
    do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
    x = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

int64_t RowwiseRowBytes(int64_t dim, int bits) { return (dim * bits + 7) / 8 + 4; }

Tensor QuantizeRowwise(const Tensor& table, int bits) {
  const int64_t rows = table.shape()[0], dim = table.shape()[1];
  const int64_t row_bytes = RowwiseRowBytes(dim, bits);
  const float levels = static_cast<float>((1 << bits) - 1);
  Tensor out(DataType::kUint8, {rows, row_bytes});
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = table.data<float>() + r * dim;
    uint8_t* dst = out.data<uint8_t>() + r * row_bytes;
    const auto [lo_it, hi_it] = std::minmax_element(x, x + dim);
    // The stored (fp16) offset and scale are the ones codes are chosen for.
    const uint16_t offset_h = FloatToHalf(dim > 0 ? *lo_it : 0.f);
    const float offset = HalfToFloat(offset_h);
    const float range = dim > 0 ? *hi_it - offset : 0.f;
    const uint16_t scale_h = FloatToHalf(range > 0.f ? range / levels : 0.f);
    const float scale = HalfToFloat(scale_h);
    for (int64_t j = 0; j < dim; ++j) {
      const float q = scale > 0.f ? std::nearbyint((x[j] - offset) / scale) : 0.f;
      const auto code = static_cast<uint8_t>(std::clamp(q, 0.f, levels));
      if (bits == 8) dst[j] = code;
      else dst[j / 2] |= static_cast<uint8_t>(code << (4 * (j % 2)));
    }
    std::memcpy(dst + row_bytes - 4, &scale_h, 2);
    std::memcpy(dst + row_bytes - 2, &offset_h, 2);
  }
  return out;
}

void DequantizeRow(const Tensor& packed, int64_t row, int64_t dim, int bits, float* dst) {
  const int64_t row_bytes = packed.shape()[1];
  const uint8_t* src = packed.data<uint8_t>() + row * row_bytes;
  uint16_t scale_h, offset_h;
  std::memcpy(&scale_h, src + row_bytes - 4, 2);
  std::memcpy(&offset_h, src + row_bytes - 2, 2);
  const float scale = HalfToFloat(scale_h), offset = HalfToFloat(offset_h);
  if (bits == 8) {
    for (int64_t j = 0; j < dim; ++j) dst[j] = src[j] * scale + offset;
  } else {
    for (int64_t j = 0; j < dim; ++j) {
      dst[j] = ((src[j / 2] >> (4 * (j % 2))) & 0xf) * scale + offset;
    }
  }
}

}  // namespace qs
