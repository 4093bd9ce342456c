// OptimizeLayerWeights: validation, the optimizer loop and the rebuild of the
// compact form. The parameterization Ŵ(V, s) and the loss and its gradient
// with respect to Ŵ live in layer_loss.cc.
#include "engine/quant/weight_optimizer.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <span>

#include "absl/strings/str_cat.h"
#include "engine/quant/bit_packing.h"
#include "engine/quant/layer_loss.h"
#include "engine/status_macros.h"

namespace qs::quant {
namespace {

using absl::InvalidArgumentError;
using absl::StrCat;

absl::Status CheckFinite(std::span<const float> v, const char* what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return InvalidArgumentError(StrCat(what, " has a non-finite value (", v[i], ") at ", i));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const Tensor& w, const QuantizedWeights& initial,
                      const WeightQuantSpec& spec, const LayerSamples& samples,
                      const OptimizePolicy& policy) {
  if (w.dtype() != DataType::kFloat32 || w.rank() != 2 || w.num_elements() == 0) {
    return InvalidArgumentError(StrCat("weights must be a non-empty float32 [OC, K], got ",
                                       DataTypeName(w.dtype()), " ", ShapeToString(w.shape())));
  }
  const int64_t oc = w.shape()[0], k = w.shape()[1];
  if (initial.method != spec.method || initial.bits != spec.bits) {
    return InvalidArgumentError("initial weights were quantized with another method/bits");
  }
  const int64_t channels = initial.per_channel ? oc : 1;
  const int64_t n = oc * k;
  if (NumElements(initial.shape) != n || initial.shape.empty() || initial.shape[0] != oc ||
      initial.channels != channels || static_cast<int64_t>(initial.codes.size()) != n ||
      static_cast<int64_t>(initial.scales.size()) != channels ||
      static_cast<int64_t>(initial.zero_points.size()) != channels ||
      static_cast<int64_t>(initial.level_codes.size()) != (channels << initial.bits)) {
    return InvalidArgumentError(StrCat("initial weights ", ShapeToString(initial.shape),
                                       " do not match weights ", ShapeToString(w.shape())));
  }
  for (int64_t c = 0; c < channels; ++c) {
    // The parameterization is Ŵ = s·code: zero points must be folded (they always are).
    if (initial.zero_points[c] != 0 || !(initial.scales[c] > 0.0f)) {
      return InvalidArgumentError(StrCat("initial channel ", c, " has zero point ",
                                         initial.zero_points[c], ", scale ", initial.scales[c]));
    }
  }
  const Tensor& x = samples.inputs;
  if (x.dtype() != DataType::kFloat32 || x.rank() != 2 || x.shape()[0] < 1) {
    return InvalidArgumentError(StrCat("sample inputs must be a non-empty float32 [S, K], got ",
                                       DataTypeName(x.dtype()), " ", ShapeToString(x.shape())));
  }
  if (x.shape()[1] != k) {
    return InvalidArgumentError(StrCat("sample inputs have K = ", x.shape()[1],
                                       " but the weights [OC, K] have K = ", k));
  }
  if (!samples.bias.empty() && static_cast<int64_t>(samples.bias.size()) != oc) {
    return InvalidArgumentError(
        StrCat("bias has ", samples.bias.size(), " entries, expected OC = ", oc));
  }
  if (policy.iterations < 1) {
    return InvalidArgumentError(StrCat("iterations must be >= 1, got ", policy.iterations));
  }
  if (!(policy.learning_rate > 0.0) || !std::isfinite(policy.learning_rate)) {
    return InvalidArgumentError(StrCat("learning_rate must be > 0, got ", policy.learning_rate));
  }
  if (policy.algorithm != Optimizer::kGd && policy.batch_size < 1) {
    return InvalidArgumentError(StrCat("batch_size must be >= 1, got ", policy.batch_size));
  }
  RETURN_IF_ERROR(CheckFinite(w.values<float>(), "weight tensor"));
  RETURN_IF_ERROR(CheckFinite(x.values<float>(), "sample inputs"));
  return CheckFinite(samples.bias, "bias");
}

// Rebuilds `packed` from `codes` via the inverse of each channel's level table.
absl::Status Repack(QuantizedWeights& qw) {
  const int64_t n = static_cast<int64_t>(qw.codes.size());
  const int64_t group = n / qw.channels;
  const int64_t table = int64_t{1} << qw.bits;
  std::vector<uint8_t> levels(group);
  qw.packed.clear();
  for (int64_t c = 0; c < qw.channels; ++c) {
    int inverse[256];
    std::fill(std::begin(inverse), std::end(inverse), -1);
    for (int64_t l = table - 1; l >= 0; --l) inverse[qw.level_codes[c * table + l] + 128] = l;
    for (int64_t i = 0; i < group; ++i) {
      const int level = inverse[qw.codes[c * group + i] + 128];
      if (level < 0) return absl::InternalError(StrCat("code outside channel ", c, "'s table"));
      levels[i] = static_cast<uint8_t>(level);
    }
    PackIndices(levels, qw.bits, qw.packed);
  }
  return absl::OkStatus();
}

// Adam state for one parameter vector; plain steps when `adam` is false.
struct Stepper {
  bool adam = false;
  std::vector<double> m = {}, v = {};
  void Step(std::vector<float>& x, const std::vector<double>& g,
            const std::vector<double>& lr, int t) {
    if (!adam) {
      for (size_t i = 0; i < x.size(); ++i) x[i] -= static_cast<float>(lr[i] * g[i]);
      return;
    }
    if (m.empty()) m.assign(x.size(), 0.0), v.assign(x.size(), 0.0);
    const double c1 = 1.0 - std::pow(0.9, t), c2 = 1.0 - std::pow(0.999, t);
    for (size_t i = 0; i < x.size(); ++i) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      x[i] -= static_cast<float>(lr[i] * (m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8));
    }
  }
};

// The optimizer loop over SoftWeights, shared by both phases.
class Trainer {
 public:
  Trainer(SoftWeights& p, LayerLoss& loss, const OptimizePolicy& policy, double excess0,
          const std::vector<double>& sum_q2)
      : p_(p), loss_(loss), policy_(policy), norm_(static_cast<double>(p.n) / excess0),
        adam_(policy.algorithm == Optimizer::kAdam), rng_(policy.seed),
        w_hat_(p.n), grad_(p.n), scales_(p.channels), lr_u_(p.channels) {
    const int64_t rows = loss.rows();
    batch_ = policy.algorithm == Optimizer::kGd ? rows : std::min<int64_t>(policy.batch_size, rows);
    perm_.resize(rows);
    for (int64_t r = 0; r < rows; ++r) perm_[r] = r;
    pos_ = rows;
    // See the header: a step of lr moves a typical weight by ~lr quantization steps.
    for (int64_t c = 0; c < p.channels; ++c) {
      lr_u_[c] = adam_ ? policy.learning_rate / std::max(1.0, std::sqrt(sum_q2[c] / p.group))
                       : policy.learning_rate / sum_q2[c];
    }
  }

  // `iters` steps on the current parameterization (fresh optimizer state).
  void Run(int iters) {
    Stepper step_v{adam_}, step_u{adam_};
    std::vector<double> g_v(p_.round ? p_.n : 0), g_u(p_.channels);
    const std::vector<double> lr_v(g_v.size(), policy_.learning_rate);
    for (int t = 1; t <= iters; ++t) {
      p_.Update();
      for (int64_t c = 0; c < p_.channels; ++c) scales_[c] = p_.Scale(c);
      DequantizeCodes(p_.q, scales_, p_.group, w_hat_);
      loss_.Compute(w_hat_, NextBatch(), grad_);
      // β: 20 → 2 linearly over the phase (no warm-up: the soft start
      // reproduces W exactly, so the reconstruction term has nothing to settle).
      const float beta = 20.0f - 18.0f * static_cast<float>(t - 1) / std::max(1, iters - 1);
      for (int64_t c = 0; c < p_.channels; ++c) {
        double gs = 0.0;
        for (int64_t i = c * p_.group; i < (c + 1) * p_.group; ++i) {
          const double g = grad_[i] * norm_;  // dJ/dŴ_i
          gs += g * p_.q[i];
          if (!p_.round) continue;
          g_v[i] = g * scales_[c] * p_.dqdv[i];
          if (p_.dhdv[i] != 0.0f) {
            // d/dh λ(1 − |2h − 1|^β) = −2λβ·|2h − 1|^(β−1)·sign(2h − 1)
            const float d = 2.0f * p_.h[i] - 1.0f;
            const float a = std::pow(std::fabs(d), beta - 1.0f);
            g_v[i] -= kRoundingLambda * 2.0 * beta * std::copysign(a, d) * p_.dhdv[i];
          }
        }
        g_u[c] = gs * p_.s0[c];
      }
      if (p_.round) step_v.Step(p_.v, g_v, lr_v, t);
      if (policy_.learn_scales) {
        step_u.Step(p_.u, g_u, lr_u_, t);
        for (float& u : p_.u) u = std::max(u, 1e-3f);  // keeps s_c > 0
      }
    }
  }

 private:
  // Next mini-batch (empty = all rows, for gd). Without replacement within an
  // epoch; Fisher–Yates written out because std::shuffle is implementation-defined.
  std::span<const int64_t> NextBatch() {
    const int64_t rows = static_cast<int64_t>(perm_.size());
    if (batch_ >= rows) return {};
    if (pos_ + batch_ > rows) {
      for (int64_t i = rows - 1; i > 0; --i) std::swap(perm_[i], perm_[rng_() % (i + 1)]);
      pos_ = 0;
    }
    pos_ += batch_;
    return std::span<const int64_t>(perm_.data() + pos_ - batch_, batch_);
  }

  SoftWeights& p_;
  LayerLoss& loss_;
  const OptimizePolicy& policy_;
  const double norm_;  // J = norm·(L − floor): RTN costs ~1 per weight
  const bool adam_;
  std::mt19937 rng_;
  int64_t batch_ = 0, pos_ = 0;
  std::vector<int64_t> perm_;
  std::vector<float> w_hat_, grad_, scales_;
  std::vector<double> lr_u_;
};

}  // namespace

absl::StatusOr<OptimizeResult> OptimizeLayerWeights(const Tensor& w,
                                                    const QuantizedWeights& initial,
                                                    const WeightQuantSpec& spec,
                                                    const LayerSamples& samples,
                                                    const OptimizePolicy& policy) {
  RETURN_IF_ERROR(Validate(w, initial, spec, samples, policy));
  const int64_t oc = w.shape()[0], k = w.shape()[1];
  SoftWeights p;
  p.n = oc * k;
  p.channels = initial.channels;
  p.group = p.n / p.channels;
  p.w = w.data<float>();
  p.fixed = initial.codes;
  LayerLoss loss(policy.loss, w.values<float>(), oc, k, samples.inputs, samples.bias);

  OptimizeResult result;
  result.weights = initial;
  std::vector<float> w_hat(p.n);
  const std::vector<float> rtn_codes(initial.codes.begin(), initial.codes.end());
  DequantizeCodes(rtn_codes, initial.scales, p.group, w_hat);
  result.initial_loss = result.final_loss = result.optimized_loss = loss.Compute(w_hat, {}, {});
  const double excess0 = result.initial_loss - loss.Floor();  // what rounding costs at RTN

  const bool linear = spec.method == WeightMethod::kLinear;
  const bool round = linear && policy.learn_rounding;
  // (Ŵ = W gives exactly e = 0, so mse's excess is exactly 0 then; the
  // relative margin only absorbs the rounding of cross_entropy's entropy sum.)
  if ((!round && !policy.learn_scales) || !(excess0 > 1e-12 * loss.Floor())) {
    return result;  // nothing to learn, or RTN already reproduces the fp32 outputs
  }

  const int64_t table = int64_t{1} << spec.bits;
  p.s0 = initial.scales;
  p.u.assign(p.channels, 1.0f);
  p.q.resize(p.n);
  std::vector<double> sum_q2(p.channels, 0.0);
  for (int64_t c = 0; c < p.channels; ++c) {
    const auto lc = std::span(initial.level_codes).subspan(c * table, table);
    p.lo.push_back(std::max<int>(*std::min_element(lc.begin(), lc.end()), -spec.max_abs_code));
    p.hi.push_back(std::min<int>(*std::max_element(lc.begin(), lc.end()), spec.max_abs_code));
    for (int64_t i = c * p.group; i < (c + 1) * p.group; ++i) sum_q2[c] += rtn_codes[i] * rtn_codes[i];
    sum_q2[c] = std::max(sum_q2[c], 1.0);
  }

  Trainer trainer(p, loss, policy, excess0, sum_q2);
  p.reround = linear;
  int scale_iters = 0;
  if (round && policy.learn_scales) {
    // AdaRound can only pick floor or ceil of W/s for the s it starts from,
    // and its soft start reproduces W exactly (no gradient for s). So the
    // scales first settle with round-to-nearest codes for a quarter of the
    // iterations; AdaRound then starts from the RTN point of those scales.
    scale_iters = policy.iterations / 4;
    trainer.Run(scale_iters);
  }
  if (round) p.StartRounding();
  trainer.Run(policy.iterations - scale_iters);

  // Hard result: AdaRound rounds h >= 0.5 up; otherwise the final soft codes are integers.
  QuantizedWeights out = initial;
  p.Update();
  for (int64_t i = 0; i < p.n; ++i) {
    const int64_t c = i / p.group;
    out.codes[i] = static_cast<int8_t>(
        p.round ? std::clamp<float>(p.base[i] + (p.h[i] >= 0.5f ? 1.0f : 0.0f), p.lo[c], p.hi[c])
                : p.q[i]);
  }
  for (int64_t c = 0; c < p.channels; ++c) out.scales[c] = p.Scale(c);
  RETURN_IF_ERROR(Repack(out));
  const std::vector<float> hard(out.codes.begin(), out.codes.end());
  DequantizeCodes(hard, out.scales, p.group, w_hat);
  result.optimized_loss = loss.Compute(w_hat, {}, {});
  result.iterations = policy.iterations;
  if (result.optimized_loss <= result.initial_loss) {
    result.weights = std::move(out);
    result.final_loss = result.optimized_loss;
  } else {
    result.reverted = true;  // never worse than round-to-nearest
  }
  return result;
}

}  // namespace qs::quant
