// Weight quantizers: turn a float32 weight tensor into int8 codes that oneDNN
// s8 primitives can execute, plus a compact packed form for storage.
//
// Every method produces the same executable form,
//   w ≈ scales[c] * (codes[i] - zero_points[c]),   |codes[i]| <= max_abs_code,
// so the serving path does not care which method made the weights. Methods
// differ only in which int8 values they use (uniform, powers of two, a learned
// codebook, ±1) and in how compactly the chosen levels can be stored.
//
// Pure math: no oneDNN, no threads; deterministic for a given spec.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs::quant {

enum class WeightMethod { kLinear, kLog2, kKMeans, kSign };
// "linear", "log2", "kmeans", "sign".
const char* WeightMethodName(WeightMethod m);

struct WeightQuantSpec {
  WeightMethod method = WeightMethod::kLinear;
  int bits = 8;              // 1..8 (sign: exactly 1; linear symmetric and log2: >= 2)
  bool symmetric = true;     // linear only; asymmetric uses a zero point per channel
  bool per_channel = true;   // one scale per output channel (axis 0); else per tensor
  // The int8 grid the codes must fit: |code| <= max_abs_code (1..127). 127
  // normally; 63 on CPUs whose int8 dot product saturates (AVX2 without VNNI).
  int max_abs_code = 127;
  // linear / log2 without given scales: instead of s = max|w| / Q, pick per
  // channel the clipping s = a·max|w| / Q (a in [0.3, 1]) with the smallest
  // weight MSE. Clipping a few outliers buys resolution for the rest, which
  // matters most below 8 bits.
  bool mse_scale_search = false;
  int kmeans_iterations = 25;  // Lloyd iterations (>= 0); stops early on convergence
  // Initialization is by quantiles and needs no randomness; the seed only
  // drives re-seeding of clusters that go empty, so results are reproducible.
  uint32_t seed = 0;
};

struct QuantizedWeights {
  WeightMethod method = WeightMethod::kLinear;
  int bits = 8;
  Shape shape;
  bool per_channel = true;
  // Linear asymmetric only. The zero point is folded into `codes` (so
  // `zero_points` are all 0 in the executable form), but a loader storing the
  // compact form needs one zero-point byte per channel; storage_bytes counts it.
  // The folded zero point of channel c is -level_codes[c << bits].
  bool symmetric = true;
  int64_t channels = 0;  // shape[0] when per_channel, else 1

  // Executable form for oneDNN s8 weights: w ≈ scales[c] * (codes[i] - zero_points[c]).
  std::vector<int8_t> codes;         // size = numel(shape)
  std::vector<float> scales;         // size = channels
  std::vector<int32_t> zero_points;  // size = channels (always 0: zero points are folded)

  // Compact storage: each weight's level index (0 .. 2^bits-1) packed LSB-first
  // as a continuous bit stream per channel (8 bits → one per byte, 4 → two,
  // 2 → four, 1 → eight; 3/5/6/7 straddle bytes); each channel starts on a
  // byte boundary.
  std::vector<uint8_t> packed;
  // Per-channel table: level index → int8 code (size channels * 2^bits).
  // Unused trailing entries repeat the last used code.
  std::vector<int8_t> level_codes;
  // Mean over all weights of (codebook level − its int8-grid value)^2; 0 for
  // linear, sign and log2 (their levels are exact multiples of the scale).
  double grid_mapping_mse = 0.0;

  // Packed codes + 4 B scale per channel + 1 B zero point per channel (linear
  // asymmetric) + 2^bits B codebook per channel (kmeans; log2 levels are implicit).
  int64_t storage_bytes() const;
  // Float32 tensor of `shape`.
  Tensor Dequantize() const;
  // Rebuilds `codes` from `packed` + `level_codes` (what the loader does).
  std::vector<int8_t> UnpackCodes() const;
};

// Errors (InvalidArgument): bits outside 1..8, sign with bits != 1, linear
// symmetric or log2 with bits == 1, max_abs_code outside 1..127, negative
// kmeans_iterations, per_channel on a rank-0 tensor, non-float32 or empty
// input, NaN/Inf weights. An all-zero channel gets scale 1 and codes 0.
absl::StatusOr<QuantizedWeights> QuantizeWeights(const Tensor& w, const WeightQuantSpec& spec);

// Requantizes with the given per-channel scales (scale optimization): same
// method/bits; linear/sign codes are recomputed by round-to-nearest under
// `scales` (asymmetric linear re-derives its zero point); log2/kmeans re-fit
// their levels and use `scales` as the int8 grid unit. `scales` must have
// `channels` finite, positive entries.
absl::StatusOr<QuantizedWeights> QuantizeWeightsWithScales(const Tensor& w,
                                                           const WeightQuantSpec& spec,
                                                           const std::vector<float>& scales);

}  // namespace qs::quant
