// Binary (sign) quantization: w ≈ α·sign(w).
#include <cmath>

#include "engine/quant/weight_quantizer_internal.h"

namespace qs::quant::internal {

// For fixed signs b = sign(w), the α minimizing Σ(w − α·b)² is Σ|w| / n, the
// mean absolute value. sign(0) = +1 (so -0.0 is +1 too). Level 0 ↔ code -1,
// level 1 ↔ code +1.
void QuantizeChannelSign(std::span<const float> w, const WeightQuantSpec& /*spec*/,
                         std::optional<float> scale, ChannelOut& out) {
  double sum_abs = 0.0;
  for (float v : w) sum_abs += std::fabs(v);
  if (sum_abs == 0.0) {
    // All-zero channel: ±1 cannot express 0, but the per-channel level table
    // can — both levels decode to code 0, with the usual scale of 1.
    for (size_t i = 0; i < w.size(); ++i) {
      out.codes[i] = 0;
      out.levels[i] = 0;
    }
    out.scale = scale.value_or(1.0f);
    out.level_codes[0] = 0;
    out.level_codes[1] = 0;
    return;
  }
  out.scale = scale ? *scale : static_cast<float>(sum_abs / static_cast<double>(w.size()));
  for (size_t i = 0; i < w.size(); ++i) {
    const bool positive = w[i] >= 0.0f;
    out.codes[i] = positive ? 1 : -1;
    out.levels[i] = positive ? 1 : 0;
  }
  out.level_codes[0] = -1;
  out.level_codes[1] = 1;
}

}  // namespace qs::quant::internal
