// Row-wise quantized embedding tables (the layout FBGEMM calls "fused
// rowwise"): each row of a float [rows, dim] table becomes one byte row of
//   [codes: dim × bits, packed low bits first] [scale: fp16] [offset: fp16]
// with value = code × scale + offset, scale = (max − min) / (2^bits − 1),
// offset = min over the row. bits is 8 or 4 (two codes per byte, the even
// column in the low nibble). Storing scale and offset per row in fp16 makes a
// 4-bit table about half its 8-bit size (dim 64: 36 vs 68 bytes a row).
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace qs {

// Bytes of one quantized row.
int64_t RowwiseRowBytes(int64_t dim, int bits);
// float32 [rows, dim] → uint8 [rows, RowwiseRowBytes(dim, bits)].
Tensor QuantizeRowwise(const Tensor& table, int bits);
// Dequantizes row `row` of a quantized table into dst[0, dim).
void DequantizeRow(const Tensor& packed, int64_t row, int64_t dim, int bits, float* dst);

// IEEE half precision, round to nearest even (no F16C dependency).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

}  // namespace qs
