// Per-channel kernels shared by weight_quantizer.cc and the per-method files.
// Not part of the public API.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>

#include "engine/quant/weight_quantizer.h"

namespace qs::quant::internal {

// One channel's slice of the output. The driver owns the storage; a method
// fills every element of every span and sets `scale`.
struct ChannelOut {
  std::span<int8_t> codes;        // one per weight
  std::span<uint8_t> levels;      // one level index per weight, < 2^bits
  std::span<int8_t> level_codes;  // 2^bits entries: level index → code
  float scale = 1.0f;
  double grid_sq_err = 0.0;       // sum over the channel's weights
};

// `scale` is the caller's fixed scale (QuantizeWeightsWithScales) or nullopt to
// derive it from the data. The spec has already been validated.
void QuantizeChannelLinear(std::span<const float> w, const WeightQuantSpec& spec,
                           std::optional<float> scale, ChannelOut& out);
void QuantizeChannelLog2(std::span<const float> w, const WeightQuantSpec& spec,
                         std::optional<float> scale, ChannelOut& out);
void QuantizeChannelKMeans(std::span<const float> w, const WeightQuantSpec& spec,
                           std::optional<float> scale, int64_t channel, ChannelOut& out);
void QuantizeChannelSign(std::span<const float> w, const WeightQuantSpec& spec,
                         std::optional<float> scale, ChannelOut& out);

// Fills level_codes[i] = first + i for i < count and repeats the last code for
// the unused tail, so any index that fits in `bits` decodes to a valid code.
void FillLevelTable(std::span<int8_t> level_codes, int first, int count);

// Round half away from zero, clamped to [lo, hi]; the one rounding rule used
// everywhere so quantize and requantize agree.
inline int RoundClamp(double x, int lo, int hi) {
  // Clamp before rounding: x can be huge (tiny caller-given scale).
  if (x <= lo) return lo;
  if (x >= hi) return hi;
  return static_cast<int>(std::round(x));
}

}  // namespace qs::quant::internal
