#include "engine/quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace qs::quant {
namespace {

// Searches evaluate at most this many thresholds so their cost stays
// bounded (O(kMaxCandidates * bins)) whatever num_bins the histogram uses.
constexpr int kMaxCandidates = 1024;

// Histogram of |x| (signed) or max(x, 0) (unsigned) with the same bin width:
// bin t covers [t*w, (t+1)*w). Exact because 0 is always a bin edge.
// Trailing empty bins are dropped: thresholds past the data are pointless.
std::vector<double> MagnitudeHistogram(const ActivationHistogram& h, bool is_unsigned) {
  const std::vector<int64_t>& b = h.bins();
  const int n = static_cast<int>(b.size());
  const int z = h.zero_bin();
  const int m = std::max(1, is_unsigned ? n - z : std::max(z, n - z));
  std::vector<double> mag(m, 0.0);
  for (int i = 0; i < n; ++i) {
    if (i >= z) {
      mag[i - z] += static_cast<double>(b[i]);
    } else {
      mag[is_unsigned ? 0 : z - 1 - i] += static_cast<double>(b[i]);
    }
  }
  while (mag.size() > 1 && mag.back() == 0.0) mag.pop_back();
  return mag;
}

// Candidate bin counts first, first+s, ..., always ending at last.
std::vector<int> Candidates(int first, int last) {
  std::vector<int> out;
  const int stride = std::max(1, (last - first + 1 + kMaxCandidates - 1) / kMaxCandidates);
  for (int j = first; j < last; j += stride) out.push_back(j);
  out.push_back(last);
  return out;
}

double Percentile(const std::vector<double>& mag, double w, double pct) {
  double total = 0.0;
  for (double c : mag) total += c;
  const double target = pct / 100.0 * total;
  double cum = 0.0;
  for (size_t t = 0; t < mag.size(); ++t) {
    if (mag[t] > 0.0 && cum + mag[t] >= target) {
      // Values are taken as uniform within the bin.
      return (static_cast<double>(t) + (target - cum) / mag[t]) * w;
    }
    cum += mag[t];
  }
  return static_cast<double>(mag.size()) * w;
}

// integral of (x - c)^2 over [a, b].
double SquaredIntegral(double a, double b, double c) {
  return ((b - c) * (b - c) * (b - c) - (a - c) * (a - c) * (a - c)) / 3.0;
}

// Expected squared error of quantizing |x| with levels 0, s, ..., L*s = t,
// values uniform within each bin; integrates cell by cell, not Δ²/12, because
// at low bit widths a step spans many bins and the approximation is poor.
double ExpectedMse(const std::vector<double>& mag, double w, double t, int levels) {
  const double s = t / levels;
  double err = 0.0;
  for (size_t i = 0; i < mag.size(); ++i) {
    if (mag[i] == 0.0) continue;
    const double e0 = static_cast<double>(i) * w;
    const double e1 = e0 + w;
    double sum = 0.0;
    if (e1 > t) sum += SquaredIntegral(std::max(e0, t), e1, t);  // clipped part
    if (e0 < t) {
      const double hi = std::min(e1, t);
      const int64_t q0 = static_cast<int64_t>(std::floor(e0 / s + 0.5));
      const int64_t q1 = std::min<int64_t>(levels, static_cast<int64_t>(std::floor(hi / s + 0.5)));
      for (int64_t q = q0; q <= q1; ++q) {
        const double a = std::max(e0, (q - 0.5) * s);
        const double b = std::min(hi, (q + 0.5) * s);
        if (b > a) sum += SquaredIntegral(a, b, q * s);
      }
    }
    err += mag[i] * sum / w;
  }
  return err;
}

double MseThreshold(const std::vector<double>& mag, double w, double max_abs, int levels) {
  double best_t = max_abs;
  double best_err = std::numeric_limits<double>::infinity();
  for (int j : Candidates(1, static_cast<int>(mag.size()))) {
    const double t = std::min(j * w, max_abs);
    const double err = ExpectedMse(mag, w, t, levels);
    if (err < best_err) {
      best_err = err;
      best_t = t;
    }
  }
  return best_t;
}

// MXNet/TensorRT smoothing: zero entries get eps and the nonzero ones give it
// up evenly, so KL stays finite where Q misses mass P has. False if no
// nonzero entries (or too few to give up eps), i.e. unusable candidate.
bool Smooth(std::vector<double>& p) {
  constexpr double kEps = 1e-4;
  int64_t zeros = 0;
  for (double v : p) zeros += (v == 0.0);
  const int64_t nonzeros = static_cast<int64_t>(p.size()) - zeros;
  if (nonzeros == 0) return false;
  const double eps1 = kEps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
  for (double& v : p) {
    v = (v == 0.0) ? kEps : v - eps1;
    if (v <= 0.0) return false;
  }
  return true;
}

double KlThreshold(const std::vector<double>& mag, double w, double max_abs, int nq) {
  const int m = static_cast<int>(mag.size());
  if (m <= nq) return max_abs;  // fewer bins than levels: nothing to clip
  // As TensorRT does, bin 0 takes bin 1's count: a spike of exact zeros
  // (ReLU outputs) would otherwise dominate the divergence and drag T down,
  // although 0 is exactly representable whatever T is.
  std::vector<double> hist = mag;
  hist[0] = hist[1];
  std::vector<double> suffix(m + 1, 0.0);  // suffix[i] = sum of hist[i..m)
  for (int i = m - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + hist[i];

  double best_t = max_abs;
  double best_kl = std::numeric_limits<double>::infinity();
  std::vector<double> p, q;
  for (int i : Candidates(nq, m)) {
    // P: the first i bins with everything beyond folded into the last one.
    p.assign(hist.begin(), hist.begin() + i);
    p[i - 1] += suffix[i];
    // Q: the unfolded first i bins merged into nq groups (the last group
    // takes the remainder), each group's mass spread evenly over the
    // positions where P is nonzero.
    q.assign(i, 0.0);
    const int merged = i / nq;
    for (int g = 0; g < nq; ++g) {
      const int start = g * merged;
      const int stop = (g == nq - 1) ? i : start + merged;
      double sum = 0.0;
      int nonzero = 0;
      for (int t = start; t < stop; ++t) {
        sum += hist[t];
        nonzero += (p[t] != 0.0);
      }
      if (nonzero == 0) continue;
      for (int t = start; t < stop; ++t) {
        if (p[t] != 0.0) q[t] = sum / nonzero;
      }
    }
    if (!Smooth(p) || !Smooth(q)) continue;
    double sp = 0.0, sq = 0.0;
    for (int t = 0; t < i; ++t) {
      sp += p[t];
      sq += q[t];
    }
    double kl = 0.0;
    for (int t = 0; t < i; ++t) {
      const double pn = p[t] / sp;
      kl += pn * std::log(pn / (q[t] / sq));
    }
    if (kl <= best_kl) {  // ties go to the larger threshold, as in TensorRT
      best_kl = kl;
      best_t = std::min(i * w, max_abs);
    }
  }
  return best_t;
}

}  // namespace

const char* CalibrationMethodName(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kMse: return "mse";
    case CalibrationMethod::kKl: return "kl";
  }
  return "unknown";
}

absl::StatusOr<ActivationRange> ChooseRange(const ActivationHistogram& h,
                                            const CalibrationSpec& spec) {
  if (spec.bits < 2 || spec.bits > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("activation bits must be in [2, 8], got ", spec.bits));
  }
  if (spec.method == CalibrationMethod::kPercentile &&
      !(spec.percentile > 50.0 && spec.percentile <= 100.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("calibration percentile must be in (50, 100], got ", spec.percentile));
  }
  if (h.count() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot calibrate an activation with no finite values (",
        h.nonfinite_count(), " NaN/Inf values were ignored)"));
  }

  const double max_abs =
      spec.is_unsigned ? std::max(0.0f, h.max()) : std::max(std::fabs(h.min()), std::fabs(h.max()));
  double t = max_abs;
  if (max_abs > 0.0 && spec.method != CalibrationMethod::kMinMax) {
    const std::vector<double> mag = MagnitudeHistogram(h, spec.is_unsigned);
    const double w = h.bin_width();
    switch (spec.method) {
      case CalibrationMethod::kMinMax:
        break;
      case CalibrationMethod::kPercentile:
        t = spec.percentile >= 100.0 ? max_abs : Percentile(mag, w, spec.percentile);
        break;
      case CalibrationMethod::kMse:
        t = MseThreshold(mag, w, max_abs,
                         spec.is_unsigned ? (1 << spec.bits) - 1 : (1 << (spec.bits - 1)) - 1);
        break;
      case CalibrationMethod::kKl:
        t = KlThreshold(mag, w, max_abs,
                        spec.is_unsigned ? 1 << spec.bits : 1 << (spec.bits - 1));
        break;
    }
    t = std::min(t, max_abs);
  }
  float hi = static_cast<float>(t);
  // Keep the scale finite and nonzero: all-zero data (or a threshold that
  // underflows float) is represented exactly by any positive range.
  if (!(hi > 0.0f)) hi = max_abs > 0.0 ? static_cast<float>(max_abs) : 1.0f;
  if (!(hi > 0.0f)) hi = 1.0f;
  return ActivationRange{spec.is_unsigned ? 0.0f : -hi, hi};
}

}  // namespace qs::quant
