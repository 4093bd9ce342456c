// Uniform (linear) quantization, symmetric and asymmetric.
#include <algorithm>
#include <cmath>

#include "engine/quant/weight_quantizer_internal.h"

namespace qs::quant::internal {
namespace {

// Symmetric: codes in [-Q, Q], Q = min(2^(bits-1) - 1, max_abs_code), s = max|w| / Q.
// The level index is code + Q, so 2Q + 1 <= 2^bits - 1 levels are used.
void Symmetric(std::span<const float> w, const WeightQuantSpec& spec,
               std::optional<float> scale, ChannelOut& out) {
  const int q = std::min((1 << (spec.bits - 1)) - 1, spec.max_abs_code);
  float s = 1.0f;  // all-zero channel: any positive scale works, 1 avoids 0/0
  if (scale) {
    s = *scale;
  } else {
    float max_abs = 0.0f;
    for (float v : w) max_abs = std::max(max_abs, std::fabs(v));
    if (max_abs > 0.0f) s = max_abs / static_cast<float>(q);
  }
  // Round with the float scale we store so Dequantize reproduces exactly this.
  for (size_t i = 0; i < w.size(); ++i) {
    const int code = RoundClamp(static_cast<double>(w[i]) / s, -q, q);
    out.codes[i] = static_cast<int8_t>(code);
    out.levels[i] = static_cast<uint8_t>(code + q);
  }
  out.scale = s;
  FillLevelTable(out.level_codes, -q, 2 * q + 1);
}

// Asymmetric: 2^bits levels lo..hi on [min(w, 0), max(w, 0)] with the zero
// point folded into the codes (code = level - z, lo = -z), so oneDNN sees plain
// symmetric s8 weights. The executable grid only reaches ±max_abs_code, so
// the scale is the largest of
//   range / (2^bits - 1)       all levels used,
//   max / max_abs_code,  -min / max_abs_code   the extremes still fit the grid.
// When a grid bound wins, fewer than 2^bits levels are reachable: e.g. 8-bit
// on all-positive weights with max_abs_code 127 uses levels 0..127 only (the
// same grid symmetric 8-bit would use), while 8-bit on sign-balanced weights
// keeps ~255 levels. The per-channel zero point z is -level_codes[0].
void Asymmetric(std::span<const float> w, const WeightQuantSpec& spec,
                std::optional<float> scale, ChannelOut& out) {
  const int m = spec.max_abs_code;
  const int n = (1 << spec.bits) - 1;  // steps between the lowest and highest level
  float lo_w = 0.0f, hi_w = 0.0f;      // the range always contains 0 so 0 is exact
  for (float v : w) {
    lo_w = std::min(lo_w, v);
    hi_w = std::max(hi_w, v);
  }
  float s = 1.0f;
  if (scale) {
    s = *scale;
  } else if (hi_w > lo_w) {
    const double range = static_cast<double>(hi_w) - lo_w;
    s = static_cast<float>(std::max({range / n, static_cast<double>(hi_w) / m,
                                     -static_cast<double>(lo_w) / m}));
  }
  const int z = RoundClamp(-static_cast<double>(lo_w) / s, 0, std::min(m, n));
  const int lo = -z;
  const int hi = std::min(lo + n, m);
  for (size_t i = 0; i < w.size(); ++i) {
    const int code = RoundClamp(static_cast<double>(w[i]) / s, lo, hi);
    out.codes[i] = static_cast<int8_t>(code);
    out.levels[i] = static_cast<uint8_t>(code - lo);
  }
  out.scale = s;
  FillLevelTable(out.level_codes, lo, hi - lo + 1);
}

}  // namespace

void FillLevelTable(std::span<int8_t> level_codes, int first, int count) {
  for (size_t i = 0; i < level_codes.size(); ++i) {
    const int idx = std::min(static_cast<int>(i), count - 1);
    level_codes[i] = static_cast<int8_t>(first + idx);
  }
}

void QuantizeChannelLinear(std::span<const float> w, const WeightQuantSpec& spec,
                           std::optional<float> scale, ChannelOut& out) {
  if (spec.symmetric) {
    Symmetric(w, spec, scale, out);
  } else {
    Asymmetric(w, spec, scale, out);
  }
}

}  // namespace qs::quant::internal
