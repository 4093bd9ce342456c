// Driver: validation, the per-channel loop, packing and the shared accessors.
// The per-method math lives in linear_/nonlinear_/sign_quantizer.cc.
#include "engine/quant/weight_quantizer.h"

#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/quant/bit_packing.h"
#include "engine/quant/weight_quantizer_internal.h"
#include "engine/status_macros.h"

namespace qs::quant {
namespace {

std::optional<float> BestClippingScale(std::span<const float> w, const WeightQuantSpec& spec,
                                       int64_t table);

using internal::ChannelOut;

absl::Status ValidateSpec(const WeightQuantSpec& spec) {
  const char* name = WeightMethodName(spec.method);
  if (spec.bits < 1 || spec.bits > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight quantization bits must be in 1..8, got ", spec.bits));
  }
  if (spec.method == WeightMethod::kSign && spec.bits != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sign quantization needs bits == 1, got ", spec.bits));
  }
  if (spec.bits == 1 && spec.method == WeightMethod::kLinear && spec.symmetric) {
    // {-Q..Q} with Q = 2^0 - 1 = 0 has a single level: everything would be 0.
    return absl::InvalidArgumentError(
        "1-bit symmetric linear quantization is degenerate; use the sign method");
  }
  if (spec.bits == 1 && spec.method == WeightMethod::kLog2) {
    // log2 needs {0, ±1} at least, i.e. 3 levels.
    return absl::InvalidArgumentError(
        "log2 quantization needs bits >= 2; use the sign method for 1 bit");
  }
  if (spec.max_abs_code < 1 || spec.max_abs_code > 127) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_abs_code must be in 1..127, got ", spec.max_abs_code, " (", name, ")"));
  }
  if (spec.kmeans_iterations < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kmeans_iterations must be >= 0, got ", spec.kmeans_iterations));
  }
  return absl::OkStatus();
}

absl::Status ValidateTensor(const Tensor& w, const WeightQuantSpec& spec) {
  if (w.empty() || w.num_elements() == 0) {
    return absl::InvalidArgumentError("cannot quantize an empty weight tensor");
  }
  if (w.dtype() != DataType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weight quantization needs float32 weights, got ", DataTypeName(w.dtype())));
  }
  if (spec.per_channel && w.rank() == 0) {
    return absl::InvalidArgumentError(
        "per-channel quantization needs a weight of rank >= 1 (got a scalar)");
  }
  const float* p = w.data<float>();
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    if (!std::isfinite(p[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "weight tensor ", ShapeToString(w.shape()), " has a non-finite value (",
          p[i], ") at flat index ", i));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<QuantizedWeights> Quantize(const Tensor& w, const WeightQuantSpec& spec,
                                          const std::vector<float>* fixed_scales) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  RETURN_IF_ERROR(ValidateTensor(w, spec));

  QuantizedWeights q;
  q.method = spec.method;
  q.bits = spec.bits;
  q.shape = w.shape();
  q.per_channel = spec.per_channel;
  q.symmetric = spec.method != WeightMethod::kLinear || spec.symmetric;
  q.channels = spec.per_channel ? w.shape()[0] : 1;

  if (fixed_scales != nullptr) {
    if (static_cast<int64_t>(fixed_scales->size()) != q.channels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expected ", q.channels, " scales for weight ", ShapeToString(w.shape()),
          ", got ", fixed_scales->size()));
    }
    for (size_t c = 0; c < fixed_scales->size(); ++c) {
      const float s = (*fixed_scales)[c];
      if (!std::isfinite(s) || s <= 0.0f) {
        return absl::InvalidArgumentError(
            absl::StrCat("scale ", c, " must be finite and > 0, got ", s));
      }
    }
  }

  const int64_t n = w.num_elements();
  const int64_t group = n / q.channels;
  const int64_t table = int64_t{1} << spec.bits;
  q.codes.resize(n);
  q.scales.resize(q.channels);
  q.zero_points.assign(q.channels, 0);
  q.level_codes.resize(q.channels * table);
  q.packed.reserve(q.channels * PackedBytes(group, spec.bits));
  std::vector<uint8_t> levels(group);
  double grid_sq_err = 0.0;

  for (int64_t c = 0; c < q.channels; ++c) {
    std::span<const float> wc(w.data<float>() + c * group, group);
    ChannelOut out{std::span<int8_t>(q.codes.data() + c * group, group), levels,
                   std::span<int8_t>(q.level_codes.data() + c * table, table)};
    std::optional<float> scale;
    if (fixed_scales != nullptr) scale = (*fixed_scales)[c];
    const bool search = scale == std::nullopt && spec.mse_scale_search &&
                        (spec.method == WeightMethod::kLinear || spec.method == WeightMethod::kLog2);
    if (search) scale = BestClippingScale(wc, spec, table);
    switch (spec.method) {
      case WeightMethod::kLinear: internal::QuantizeChannelLinear(wc, spec, scale, out); break;
      case WeightMethod::kLog2: internal::QuantizeChannelLog2(wc, spec, scale, out); break;
      case WeightMethod::kKMeans:
        internal::QuantizeChannelKMeans(wc, spec, scale, c, out);
        break;
      case WeightMethod::kSign: internal::QuantizeChannelSign(wc, spec, scale, out); break;
    }
    q.scales[c] = out.scale;
    grid_sq_err += out.grid_sq_err;
    PackIndices(levels, spec.bits, q.packed);  // appends: each channel byte-aligned
  }
  q.grid_mapping_mse = grid_sq_err / static_cast<double>(n);
  return q;
}

// Weight MSE of quantizing `w` with `scale` (or the method's own scale).
double ChannelMse(std::span<const float> w, const WeightQuantSpec& spec,
                  std::optional<float> scale, int64_t table, float* chosen_scale) {
  std::vector<int8_t> codes(w.size()), level_codes(table);
  std::vector<uint8_t> levels(w.size());
  internal::ChannelOut out{codes, levels, level_codes};
  if (spec.method == WeightMethod::kLinear) {
    internal::QuantizeChannelLinear(w, spec, scale, out);
  } else {
    internal::QuantizeChannelLog2(w, spec, scale, out);
  }
  double err = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - static_cast<double>(out.scale) * codes[i];
    err += d * d;
  }
  *chosen_scale = out.scale;
  return err;
}

std::optional<float> BestClippingScale(std::span<const float> w, const WeightQuantSpec& spec,
                                       int64_t table) {
  float s0 = 0;
  double best = ChannelMse(w, spec, std::nullopt, table, &s0);
  if (!(s0 > 0.f)) return std::nullopt;
  float best_scale = s0;
  for (int step = 1; step <= 35; ++step) {
    const float s = s0 * (1.f - 0.02f * step);
    float used = 0;
    const double err = ChannelMse(w, spec, s, table, &used);
    if (err < best) {
      best = err;
      best_scale = s;
    }
  }
  return best_scale;
}

}  // namespace

const char* WeightMethodName(WeightMethod m) {
  switch (m) {
    case WeightMethod::kLinear: return "linear";
    case WeightMethod::kLog2: return "log2";
    case WeightMethod::kKMeans: return "kmeans";
    case WeightMethod::kSign: return "sign";
  }
  return "unknown";
}

absl::StatusOr<QuantizedWeights> QuantizeWeights(const Tensor& w, const WeightQuantSpec& spec) {
  return Quantize(w, spec, nullptr);
}

absl::StatusOr<QuantizedWeights> QuantizeWeightsWithScales(const Tensor& w,
                                                           const WeightQuantSpec& spec,
                                                           const std::vector<float>& scales) {
  return Quantize(w, spec, &scales);
}

int64_t QuantizedWeights::storage_bytes() const {
  int64_t bytes = static_cast<int64_t>(packed.size()) + 4 * channels;
  if (method == WeightMethod::kLinear && !symmetric) bytes += channels;       // zero points
  if (method == WeightMethod::kKMeans) bytes += channels * (int64_t{1} << bits);  // codebooks
  return bytes;
}

Tensor QuantizedWeights::Dequantize() const {
  Tensor t(DataType::kFloat32, shape);
  float* out = t.data<float>();
  const int64_t n = static_cast<int64_t>(codes.size());
  const int64_t group = channels > 0 ? n / channels : 0;
  for (int64_t c = 0; c < channels; ++c) {
    const float s = scales[c];
    const int32_t z = zero_points[c];
    for (int64_t i = c * group; i < (c + 1) * group; ++i) {
      out[i] = s * static_cast<float>(codes[i] - z);
    }
  }
  return t;
}

std::vector<int8_t> QuantizedWeights::UnpackCodes() const {
  const int64_t n = NumElements(shape);
  std::vector<int8_t> result(n);
  if (channels <= 0) return result;
  const int64_t group = n / channels;
  const int64_t table = int64_t{1} << bits;
  const int64_t channel_bytes = PackedBytes(group, bits);
  std::vector<uint8_t> levels(group);
  for (int64_t c = 0; c < channels; ++c) {
    UnpackIndices(std::span<const uint8_t>(packed.data() + c * channel_bytes, channel_bytes),
                  bits, levels);
    const int8_t* lut = level_codes.data() + c * table;
    for (int64_t i = 0; i < group; ++i) result[c * group + i] = lut[levels[i]];
  }
  return result;
}

}  // namespace qs::quant
