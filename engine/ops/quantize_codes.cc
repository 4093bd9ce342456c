#include "engine/ops/quantize_codes.h"

#include <immintrin.h>

#include <algorithm>
#include <type_traits>

namespace qs {
namespace {

template <typename Code>
constexpr float kLo = std::is_same_v<Code, uint8_t> ? 0.f : -128.f;
template <typename Code>
constexpr float kHi = std::is_same_v<Code, uint8_t> ? 255.f : 127.f;

template <typename Code>
void ScalarLoop(const float* x, int64_t n, float scale, float zero_point, Code* y) {
  for (int64_t i = 0; i < n; ++i) {
    float v = __builtin_nearbyintf(x[i] / scale) + zero_point;
    // NaN compares false everywhere: it becomes the zero point.
    v = v != v ? zero_point : std::min(kHi<Code>, std::max(kLo<Code>, v));
    y[i] = static_cast<Code>(static_cast<int32_t>(v));
  }
}

// 8 floats -> 8 int32 codes, with the scalar loop's exact semantics: the
// same IEEE division, round-half-even (the default rounding mode nearbyint
// uses), NaN -> zero point, then saturation.
__attribute__((target("avx2"))) inline __m256i Codes8(const float* x, __m256 scale, __m256 zp,
                                                      __m256 lo, __m256 hi) {
  const __m256 in = _mm256_loadu_ps(x);
  __m256 v = _mm256_round_ps(_mm256_div_ps(in, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_add_ps(v, zp);
  v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));  // max(lo, NaN) is NaN: blended next
  v = _mm256_blendv_ps(v, zp, _mm256_cmp_ps(in, in, _CMP_UNORD_Q));
  return _mm256_cvtps_epi32(v);
}

template <typename Code>
__attribute__((target("avx2"))) void Avx2Loop(const float* x, int64_t n, float scale,
                                              float zero_point, Code* y) {
  const __m256 s = _mm256_set1_ps(scale), zp = _mm256_set1_ps(zero_point);
  const __m256 lo = _mm256_set1_ps(kLo<Code>), hi = _mm256_set1_ps(kHi<Code>);
  // packs/packus work within 128-bit lanes; this puts the 8 dwords of
  // 4-code groups back in element order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i c0 = Codes8(x + i, s, zp, lo, hi), c1 = Codes8(x + i + 8, s, zp, lo, hi);
    const __m256i c2 = Codes8(x + i + 16, s, zp, lo, hi), c3 = Codes8(x + i + 24, s, zp, lo, hi);
    const __m256i w01 = _mm256_packs_epi32(c0, c1), w23 = _mm256_packs_epi32(c2, c3);
    const __m256i b = std::is_same_v<Code, uint8_t> ? _mm256_packus_epi16(w01, w23)
                                                    : _mm256_packs_epi16(w01, w23);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_permutevar8x32_epi32(b, order));
  }
  ScalarLoop(x + i, n - i, scale, zero_point, y + i);
}

template <typename Code>
void DequantizeScalarLoop(const Code* x, int64_t n, float scale, int32_t zero_point, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zero_point) * scale;
  }
}

// Exactly the scalar loop: the integer difference converts exactly, then
// one multiplication.
template <typename Code>
__attribute__((target("avx2"))) void DequantizeAvx2Loop(const Code* x, int64_t n, float scale,
                                                        int32_t zero_point, float* y) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i zp = _mm256_set1_epi32(zero_point);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i));
    const __m256i codes = std::is_same_v<Code, uint8_t> ? _mm256_cvtepu8_epi32(bytes)
                                                        : _mm256_cvtepi8_epi32(bytes);
    const __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(codes, zp));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(v, s));
  }
  DequantizeScalarLoop(x + i, n - i, scale, zero_point, y + i);
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

}  // namespace

void QuantizeToU8(const float* x, int64_t n, float scale, float zero_point, uint8_t* y) {
  if (HasAvx2()) Avx2Loop(x, n, scale, zero_point, y);
  else ScalarLoop(x, n, scale, zero_point, y);
}

void QuantizeToS8(const float* x, int64_t n, float scale, float zero_point, int8_t* y) {
  if (HasAvx2()) Avx2Loop(x, n, scale, zero_point, y);
  else ScalarLoop(x, n, scale, zero_point, y);
}

void DequantizeFromU8(const uint8_t* x, int64_t n, float scale, int32_t zero_point, float* y) {
  if (HasAvx2()) DequantizeAvx2Loop(x, n, scale, zero_point, y);
  else DequantizeScalarLoop(x, n, scale, zero_point, y);
}

void DequantizeFromS8(const int8_t* x, int64_t n, float scale, int32_t zero_point, float* y) {
  if (HasAvx2()) DequantizeAvx2Loop(x, n, scale, zero_point, y);
  else DequantizeScalarLoop(x, n, scale, zero_point, y);
}

void DequantizeFromU8Scalar(const uint8_t* x, int64_t n, float scale, int32_t zero_point,
                            float* y) {
  DequantizeScalarLoop(x, n, scale, zero_point, y);
}

void QuantizeToU8Scalar(const float* x, int64_t n, float scale, float zero_point, uint8_t* y) {
  ScalarLoop(x, n, scale, zero_point, y);
}

void QuantizeToS8Scalar(const float* x, int64_t n, float scale, float zero_point, int8_t* y) {
  ScalarLoop(x, n, scale, zero_point, y);
}

}  // namespace qs
