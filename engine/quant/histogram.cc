#include "engine/quant/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs::quant {
namespace {

// Floor division for a possibly negative numerator (C++ truncates to 0).
int64_t FloorDiv(int64_t num, int64_t den) {
  int64_t q = num / den;
  if ((num % den != 0) && (num < 0)) --q;
  return q;
}

}  // namespace

ActivationHistogram::ActivationHistogram(int num_bins)
    : num_bins_(std::max(num_bins, 16)),
      min_(std::numeric_limits<float>::infinity()),
      max_(-std::numeric_limits<float>::infinity()) {}

void ActivationHistogram::Add(const float* data, int64_t n, bool extremes_only) {
  // Pass 1: the batch's finite extremes, so the range grows at most once per
  // batch instead of once per out-of-range value.
  float lo = std::numeric_limits<float>::infinity();
  float hi = -lo;
  int64_t finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float x = data[i];
    if (!std::isfinite(x)) {
      ++nonfinite_;
      continue;
    }
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    ++finite;
  }
  if (finite == 0) return;
  count_ += finite;
  min_ = std::min(min_, lo);
  max_ = std::max(max_, hi);
  if (extremes_only) return;

  if (bins_.empty()) {
    if (min_ == 0.0f && max_ == 0.0f) {  // still no scale to size bins by
      pending_zeros_ += finite;
      return;
    }
    Init(min_, max_);
  } else if (lo < range_lo() || hi > range_hi()) {
    Grow(lo, hi);
  }

  // Pass 2: bin the finite values.
  for (int64_t i = 0; i < n; ++i) {
    const float x = data[i];
    if (std::isfinite(x)) ++bins_[BinOf(x)];
  }
}

void ActivationHistogram::Init(double lo, double hi) {
  const double neg = std::max(0.0, -lo);
  const double pos = std::max(0.0, hi);
  // N-1 (not N) bins' worth of width leaves room for rounding 'neg' up to a
  // whole number of bins while still covering 'pos'.
  width_ = (neg + pos) / (num_bins_ - 1);
  neg_bins_ = static_cast<int>(std::min<double>(num_bins_, std::ceil(neg / width_)));
  bins_.assign(num_bins_, 0);
  if (pending_zeros_ > 0) {
    bins_[BinOf(0.0f)] += pending_zeros_;
    pending_zeros_ = 0;
  }
}

void ActivationHistogram::Grow(double lo, double hi) {
  const int n = num_bins_;
  // Extent needed on each side of 0, in current bin widths; the old range is
  // kept so every old bin lands inside exactly one new bin.
  const double alpha = std::max<double>(neg_bins_, -lo / width_);
  const double beta = std::max<double>(n - neg_bins_, hi / width_);
  // Smallest factor that could fit (at least 2 so repeated small overshoots
  // cost O(log range) regrowths); if rounding each side up to whole bins
  // does not fit, (N-2) leaves room for both round-ups.
  double k = std::max(2.0, std::ceil((alpha + beta) / n));
  if (std::ceil(alpha / k) + std::ceil(beta / k) > n) {
    k = std::ceil((alpha + beta) / (n - 2));
  }
  // Split the bins between the sides in proportion to their extents (within
  // what each side needs): giving all the slack to one side would make the
  // other overflow again at the next slightly larger value, doubling the
  // width each time while most bins sit empty.
  const int need_neg = static_cast<int>(std::min<double>(n, std::ceil(alpha / k)));
  const int need_pos = static_cast<int>(std::min<double>(n, std::ceil(beta / k)));
  const int new_neg = std::clamp(static_cast<int>(std::lround(n * alpha / (alpha + beta))),
                                 need_neg, std::max(need_neg, n - need_pos));

  // New edges are the multiples of k*w, a subset of the old edges (multiples
  // of w), so old bin i (starting at (i-a)*w) sits wholly in new bin
  // a' + floor((i-a)/k): the merge is exact, no resampling.
  std::vector<int64_t> merged(n, 0);
  for (int i = 0; i < n; ++i) {
    if (bins_[i] == 0) continue;
    const int64_t offset = i - neg_bins_;
    int64_t j;
    if (k > n) {
      // |offset| <= n < k, so floor(offset/k) is just the sign; this also
      // avoids an int64 k when the range jumps by many orders of magnitude.
      j = new_neg + (offset < 0 ? -1 : 0);
    } else {
      j = new_neg + FloorDiv(offset, static_cast<int64_t>(k));
    }
    merged[std::clamp<int64_t>(j, 0, n - 1)] += bins_[i];
  }
  bins_.swap(merged);
  width_ *= k;
  neg_bins_ = new_neg;
}

int ActivationHistogram::BinOf(float x) const {
  // Clamping absorbs x == range_hi() and last-ulp rounding at the ends.
  const double t = std::floor(static_cast<double>(x) / width_) + neg_bins_;
  return static_cast<int>(std::clamp(t, 0.0, static_cast<double>(num_bins_ - 1)));
}

}  // namespace qs::quant
