// Non-uniform quantizers: power-of-two levels (log2) and a learned codebook
// (k-means). Both end on the same int8 grid as linear: w ≈ s · code.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/quant/weight_quantizer_internal.h"

namespace qs::quant::internal {
namespace {

// Largest K with 2^K <= max_abs_code (the grid) and 2K + 3 <= 2^bits (the
// levels {0} ∪ {±2^k : k = 0..K} must have distinct indices).
int Log2MaxExponent(const WeightQuantSpec& spec) {
  int k = 0;
  while ((2 << k) <= spec.max_abs_code) ++k;
  return std::min(k, ((1 << spec.bits) - 3) / 2);
}

}  // namespace

// Levels, in index order: -2^K .. -1, 0, 1 .. 2^K (2K + 3 of them). Each weight
// takes the nearest level by VALUE, not by log distance: it is simpler, and
// value distance is what the MSE measures. With s = max|w| / 2^K the levels
// are exact multiples of s, so there is no grid-mapping error. Beyond 4 bits
// the grid (not the bit budget) limits K, so 5..8-bit log2 all equal 4-bit at
// max_abs_code 127 (K = 6) — more bits buy nothing for this method.
void QuantizeChannelLog2(std::span<const float> w, const WeightQuantSpec& spec,
                         std::optional<float> scale, ChannelOut& out) {
  const int k_max = Log2MaxExponent(spec);
  float s = 1.0f;
  if (scale) {
    s = *scale;
  } else {
    float max_abs = 0.0f;
    for (float v : w) max_abs = std::max(max_abs, std::fabs(v));
    if (max_abs > 0.0f) s = max_abs / static_cast<float>(1 << k_max);
  }
  for (size_t i = 0; i < w.size(); ++i) {
    const double x = std::fabs(static_cast<double>(w[i])) / s;
    if (x < 0.5) {  // nearer to 0 than to 1
      out.codes[i] = 0;
      out.levels[i] = static_cast<uint8_t>(k_max + 1);
      continue;
    }
    int e = 0;  // 1.5·2^e is the midpoint between 2^e and 2^(e+1)
    while (e < k_max && x >= 1.5 * (1 << e)) ++e;
    const bool negative = w[i] < 0.0f;
    out.codes[i] = static_cast<int8_t>(negative ? -(1 << e) : (1 << e));
    out.levels[i] = static_cast<uint8_t>(negative ? k_max - e : k_max + 2 + e);
  }
  out.scale = s;
  for (size_t i = 0; i < out.level_codes.size(); ++i) {
    const int idx = std::min(static_cast<int>(i), 2 * k_max + 2);
    int code = 0;
    if (idx <= k_max) code = -(1 << (k_max - idx));
    if (idx >= k_max + 2) code = 1 << (idx - k_max - 2);
    out.level_codes[i] = static_cast<int8_t>(code);
  }
}

namespace {

// 1-D Lloyd's algorithm on sorted values. Returns sorted centroids (at most k).
std::vector<double> KMeans1D(const std::vector<double>& sorted, int k, int iterations,
                             uint32_t seed) {
  const size_t n = sorted.size();
  // Few distinct values: they are the optimal codebook (zero error).
  std::vector<double> distinct;
  for (double v : sorted) {
    if (distinct.empty() || v != distinct.back()) distinct.push_back(v);
    if (distinct.size() > static_cast<size_t>(k)) break;
  }
  if (distinct.size() <= static_cast<size_t>(k)) return distinct;

  // Quantile init: deterministic and already close to optimal for smooth
  // distributions, so few iterations are needed.
  std::vector<double> c(k);
  for (int j = 0; j < k; ++j) {
    c[j] = sorted[std::min(n - 1, static_cast<size_t>((j + 0.5) * n / k))];
  }
  std::mt19937 rng(seed);  // only for re-seeding empty clusters
  std::vector<double> sums(k);
  std::vector<int64_t> counts(k);
  for (int it = 0; it < iterations; ++it) {
    std::sort(c.begin(), c.end());
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    // Sorted values and sorted centroids: clusters are contiguous runs split
    // at centroid midpoints, so one sweep assigns everything (ties go low).
    int j = 0;
    for (double v : sorted) {
      while (j + 1 < k && v > 0.5 * (c[j] + c[j + 1])) ++j;
      sums[j] += v;
      ++counts[j];
    }
    bool changed = false;
    for (int i = 0; i < k; ++i) {
      // An empty cluster (duplicate quantiles on repeated values) is moved to a
      // random data point so its level is not wasted.
      const double next = counts[i] > 0 ? sums[i] / counts[i] : sorted[rng() % n];
      changed |= next != c[i];
      c[i] = next;
    }
    if (!changed) break;
  }
  std::sort(c.begin(), c.end());
  return c;
}

}  // namespace

// Per channel: 2^bits centroids by k-means, then each centroid is mapped onto
// the int8 grid with s = max|centroid| / max_abs_code, code = round(c / s).
// Weights keep their k-means assignment; the distance from centroid to grid
// value is accumulated into grid_sq_err (reported as grid_mapping_mse).
void QuantizeChannelKMeans(std::span<const float> w, const WeightQuantSpec& spec,
                           std::optional<float> scale, int64_t channel, ChannelOut& out) {
  const int k = 1 << spec.bits;
  const int m = spec.max_abs_code;
  std::vector<double> sorted(w.begin(), w.end());
  std::sort(sorted.begin(), sorted.end());
  // Mix the channel in so channels re-seed independently yet reproducibly.
  const uint32_t seed = spec.seed ^ static_cast<uint32_t>(channel * 0x9E3779B9u);
  const std::vector<double> c = KMeans1D(sorted, k, spec.kmeans_iterations, seed);
  const int used = static_cast<int>(c.size());

  float s = 1.0f;
  if (scale) {
    s = *scale;
  } else {
    double max_c = 0.0;
    for (double v : c) max_c = std::max(max_c, std::fabs(v));
    if (max_c > 0.0) s = static_cast<float>(max_c / m);
  }
  std::vector<int> grid(used);
  for (int j = 0; j < used; ++j) grid[j] = RoundClamp(c[j] / s, -m, m);

  std::vector<double> mids(used > 0 ? used - 1 : 0);
  for (int j = 0; j + 1 < used; ++j) mids[j] = 0.5 * (c[j] + c[j + 1]);
  double sq_err = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    // Same tie rule as the sweep: a value on a midpoint goes to the lower level.
    const int j = static_cast<int>(std::lower_bound(mids.begin(), mids.end(),
                                                    static_cast<double>(w[i])) -
                                   mids.begin());
    out.codes[i] = static_cast<int8_t>(grid[j]);
    out.levels[i] = static_cast<uint8_t>(j);
    const double d = c[j] - static_cast<double>(s) * grid[j];
    sq_err += d * d;
  }
  out.scale = s;
  out.grid_sq_err = sq_err;
  for (size_t i = 0; i < out.level_codes.size(); ++i) {
    out.level_codes[i] = static_cast<int8_t>(grid[std::min(static_cast<int>(i), used - 1)]);
  }
}

}  // namespace qs::quant::internal
