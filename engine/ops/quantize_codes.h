// float -> uint8/int8 codes, the inner loop of QuantizeLinear: round half to
// even, add the zero point, saturate; NaN becomes the zero point. On ResNet-18
// w8a8 the activations entering each int8 conv pass through it, and the
// scalar loop (a division and a libm nearbyintf per element) took ~19 % of
// a batch-16 run; the AVX2 version is picked at run time when the CPU has it.
#pragma once

#include <cstdint>

namespace qs {

void QuantizeToU8(const float* x, int64_t n, float scale, float zero_point, uint8_t* y);
void QuantizeToS8(const float* x, int64_t n, float scale, float zero_point, int8_t* y);

// uint8/int8 codes -> float, (code - zero_point) · scale, the per-tensor
// DequantizeLinear (ResNet-18's stem output for the residual path: a scalar
// loop took 3 ms of a 166 ms batch-16 run).
void DequantizeFromU8(const uint8_t* x, int64_t n, float scale, int32_t zero_point, float* y);
void DequantizeFromS8(const int8_t* x, int64_t n, float scale, int32_t zero_point, float* y);

// The portable loops, for tests to hold the vector ones to.
void QuantizeToU8Scalar(const float* x, int64_t n, float scale, float zero_point, uint8_t* y);
void QuantizeToS8Scalar(const float* x, int64_t n, float scale, float zero_point, int8_t* y);
void DequantizeFromU8Scalar(const uint8_t* x, int64_t n, float scale, int32_t zero_point,
                            float* y);

}  // namespace qs
