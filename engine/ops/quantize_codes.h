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

// The portable loop, for tests to hold the vector one to.
void QuantizeToU8Scalar(const float* x, int64_t n, float scale, float zero_point, uint8_t* y);
void QuantizeToS8Scalar(const float* x, int64_t n, float scale, float zero_point, int8_t* y);

}  // namespace qs
