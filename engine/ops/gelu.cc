#include "engine/ops/gelu.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace qs {
namespace {

// erf(z) ≈ z · P(z²) / Q(z²) for |z| <= kClamp (erf(3.92) = 1 − 6e-8), fitted
// by iterated linear least squares (Sanathanan–Koerner) in double precision.
constexpr float kClamp = 3.92f;
constexpr float kP[] = {1.128379168e+00f, 1.851806475e-01f, 5.403694367e-02f, 3.812752224e-03f,
                        3.674704328e-04f, 4.359386810e-06f, -1.150208756e-08f};
constexpr float kQ[] = {1.000000000e+00f, 4.974454462e-01f, 1.137038703e-01f, 1.534600907e-02f,
                        1.283775379e-03f, 6.003554250e-05f};
constexpr float kInvSqrt2 = 0.70710678118654752f;

inline float GeluScalar(float x) {
  const float z = std::clamp(x * kInvSqrt2, -kClamp, kClamp);
  const float w = z * z;
  float p = kP[6], q = kQ[5];
  for (int i = 5; i >= 0; --i) p = p * w + kP[i];
  for (int i = 4; i >= 0; --i) q = q * w + kQ[i];
  const float erf = std::clamp(z * p / q, -1.f, 1.f);
  return 0.5f * x * (1.f + erf);
}

void ScalarLoop(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = GeluScalar(x[i]);
}

__attribute__((target("avx2,fma"))) void Avx2Loop(float* x, int64_t n) {
  const __m256 lo = _mm256_set1_ps(-kClamp), hi = _mm256_set1_ps(kClamp);
  const __m256 one = _mm256_set1_ps(1.f), minus_one = _mm256_set1_ps(-1.f);
  const __m256 half = _mm256_set1_ps(0.5f), inv_sqrt2 = _mm256_set1_ps(kInvSqrt2);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    // NaN propagates: min/max return their second operand (the NaN) here.
    const __m256 z = _mm256_max_ps(lo, _mm256_min_ps(hi, _mm256_mul_ps(v, inv_sqrt2)));
    const __m256 w = _mm256_mul_ps(z, z);
    __m256 p = _mm256_set1_ps(kP[6]);
    for (int k = 5; k >= 0; --k) p = _mm256_fmadd_ps(p, w, _mm256_set1_ps(kP[k]));
    __m256 q = _mm256_set1_ps(kQ[5]);
    for (int k = 4; k >= 0; --k) q = _mm256_fmadd_ps(q, w, _mm256_set1_ps(kQ[k]));
    __m256 erf = _mm256_div_ps(_mm256_mul_ps(z, p), q);
    erf = _mm256_max_ps(minus_one, _mm256_min_ps(one, erf));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf)));
  }
  ScalarLoop(x + i, n - i);
}

bool HasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

}  // namespace

void GeluErfInPlace(float* x, int64_t n) {
  // Chunks of 16k elements (64 KiB) per thread: below that, waking the
  // other threads costs more than the work.
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const bool vector = HasAvx2Fma();
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk, len = std::min(kChunk, n - begin);
    if (vector) {
      Avx2Loop(x + begin, len);
    } else {
      ScalarLoop(x + begin, len);
    }
  }
}

void GeluErfInPlaceScalar(float* x, int64_t n) { ScalarLoop(x, n); }

}  // namespace qs
