// GELU (erf form), y = x/2 · (1 + erf(x/√2)), applied in place to the
// float32 output of a dense layer. oneDNN 2.6's gelu_erf (post-op or
// eltwise) takes 0.9 ns per element on this AVX2 CPU — 0.12 ms of each
// BERT-base FFN up-projection at sequence 128, a third of the int8 layer.
// Here erf is a rational least-squares fit (z·P(z²)/Q(z²) on |z| <= 3.92, ±1
// beyond; 3.3e-7 absolute error in float32), about twice as fast, and the
// loop splits over the run's OpenMP threads.
#pragma once

#include <cstdint>

namespace qs {

void GeluErfInPlace(float* x, int64_t n);

// The portable loop with the same approximation, for tests to hold the
// vector loop to.
void GeluErfInPlaceScalar(float* x, int64_t n);

}  // namespace qs
