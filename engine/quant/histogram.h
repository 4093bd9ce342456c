// Streaming statistics of one activation tensor for calibration.
//
// Calibration runs the float model over many batches; keeping every
// activation in memory is out of the question, so each tensor gets one
// ActivationHistogram that is fed batch by batch. The histogram has a fixed
// number of bins over a range that only grows: when a batch falls outside
// it, the bin width is multiplied by an integer factor k and every k old
// bins are merged exactly into one new bin (the TensorRT / ONNX Runtime
// histogram-collector idea), so the whole calibration is a single sweep.
// The bins are then re-split between the negative and positive sides in
// proportion to their extents, so both keep headroom for further growth.
//
// Invariant: 0 is always a bin edge and the range always contains 0, i.e.
// range = [-a*w, b*w] with integers a + b = num_bins. Clip ranges are either
// symmetric about 0 or [0, T], so the range would contain 0 anyway, and 0
// on an edge lets the calibrator fold the negative half onto the positive
// half bin-for-bin (the |x| histogram) without resampling.
#pragma once

#include <cstdint>
#include <vector>

namespace qs::quant {

class ActivationHistogram {
 public:
  static constexpr int kDefaultBins = 2048;
  // Fewer than 16 bins is raised to 16 (range growth needs a few spare bins).
  explicit ActivationHistogram(int num_bins = kDefaultBins);

  // Adds n values. NaN and +-Inf are skipped (a quantizer cannot represent
  // them, and one Inf would make the range useless) but are counted in
  // nonfinite_count() so callers can warn about them.
  // `extremes_only`: track min, max and counts but no bins (minmax
  // calibration needs nothing else, and binning is most of the cost).
  void Add(const float* data, int64_t n, bool extremes_only = false);

  // Exact extremes of the finite values; +inf / -inf while count() == 0.
  float min() const { return min_; }
  float max() const { return max_; }
  // Number of finite values added (the histogram's total mass).
  int64_t count() const { return count_; }
  int64_t nonfinite_count() const { return nonfinite_; }

  int num_bins() const { return num_bins_; }
  // Bin i covers [range_lo() + i*bin_width(), range_lo() + (i+1)*bin_width());
  // the last bin also holds values equal to range_hi(). Empty until the
  // first nonzero finite value (all-zero data has no scale to size bins by;
  // zeros seen before then are put into the bin starting at 0).
  const std::vector<int64_t>& bins() const { return bins_; }
  double bin_width() const { return width_; }
  double range_lo() const { return -static_cast<double>(neg_bins_) * width_; }
  double range_hi() const {
    return static_cast<double>(num_bins_ - neg_bins_) * width_;
  }
  // Number of bins below 0, i.e. the index of the bin starting at 0.
  int zero_bin() const { return neg_bins_; }

 private:
  void Init(double lo, double hi);
  void Grow(double lo, double hi);
  int BinOf(float x) const;

  int num_bins_;
  std::vector<int64_t> bins_;
  double width_ = 0.0;  // 0 until initialised
  int neg_bins_ = 0;    // a in the invariant above
  float min_;
  float max_;
  int64_t count_ = 0;
  int64_t nonfinite_ = 0;
  int64_t pending_zeros_ = 0;  // zeros seen while bins_ is still empty
};

}  // namespace qs::quant
