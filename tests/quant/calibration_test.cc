#include "engine/quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/quant/histogram.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs::quant {
namespace {

using ::testing::HasSubstr;

constexpr CalibrationMethod kAllMethods[] = {CalibrationMethod::kMinMax,
                                             CalibrationMethod::kPercentile,
                                             CalibrationMethod::kMse, CalibrationMethod::kKl};

std::vector<float> Gaussian(int n, double sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, static_cast<float>(sigma));
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> Laplace(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> mag(1.0f);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

ActivationHistogram HistogramOf(const std::vector<float>& v) {
  ActivationHistogram h;
  h.Add(v.data(), static_cast<int64_t>(v.size()));
  return h;
}

ActivationRange Choose(const ActivationHistogram& h, CalibrationMethod m, int bits = 8,
                       bool is_unsigned = false, double pct = 99.99) {
  CalibrationSpec spec;
  spec.method = m;
  spec.bits = bits;
  spec.is_unsigned = is_unsigned;
  spec.percentile = pct;
  absl::StatusOr<ActivationRange> r = ChooseRange(h, spec);
  EXPECT_TRUE(r.ok()) << CalibrationMethodName(m) << ": " << r.status();
  return r.ok() ? *r : ActivationRange{0.0f, 0.0f};
}

// Actual MSE of fake-quantizing the samples with the quantizer the range
// implies (the convention documented in calibration.h).
double QuantMse(const std::vector<float>& v, ActivationRange r, int bits) {
  const bool is_unsigned = r.lo == 0.0f;
  const int qmax = is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
  const int qmin = is_unsigned ? 0 : -qmax;
  const double s = r.hi / qmax;
  double err = 0.0;
  for (float x : v) {
    const double q = std::clamp(std::nearbyint(x / s), static_cast<double>(qmin), static_cast<double>(qmax)) * s;
    err += (x - q) * (x - q);
  }
  return err / v.size();
}

// Exact percentile of |x| by sorting (rank p/100 * n, nearest).
double ExactAbsPercentile(std::vector<float> v, double pct) {
  for (float& x : v) x = std::fabs(x);
  std::sort(v.begin(), v.end());
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(pct / 100.0 * v.size()));
  return v[k];
}

int64_t BinTotal(const ActivationHistogram& h) {
  int64_t total = 0;
  for (int64_t c : h.bins()) total += c;
  return total;
}

TEST(CalibrationTest, MethodNames) {
  EXPECT_STREQ(CalibrationMethodName(CalibrationMethod::kMinMax), "minmax");
  EXPECT_STREQ(CalibrationMethodName(CalibrationMethod::kPercentile), "percentile");
  EXPECT_STREQ(CalibrationMethodName(CalibrationMethod::kMse), "mse");
  EXPECT_STREQ(CalibrationMethodName(CalibrationMethod::kKl), "kl");
}

TEST(CalibrationTest, StreamingMatchesSingleBatch) {
  const std::vector<float> v = Gaussian(100000, 2.0, 1);
  const ActivationHistogram whole = HistogramOf(v);
  ActivationHistogram streamed;
  for (size_t i = 0; i < v.size(); i += 777) {
    streamed.Add(v.data() + i, static_cast<int64_t>(std::min<size_t>(777, v.size() - i)));
  }
  EXPECT_EQ(streamed.min(), whole.min());
  EXPECT_EQ(streamed.max(), whole.max());
  EXPECT_EQ(streamed.count(), whole.count());
  EXPECT_EQ(streamed.min(), *std::min_element(v.begin(), v.end()));
  EXPECT_EQ(streamed.max(), *std::max_element(v.begin(), v.end()));
  EXPECT_EQ(streamed.count(), 100000);
  EXPECT_EQ(BinTotal(streamed), 100000);
  EXPECT_EQ(streamed.bins().size(), 2048u);
}

TEST(CalibrationTest, RangeGrowthKeepsCountAndQuantiles) {
  // Batch k is Gaussian with sigma 4^k and shifted so the range grows on both
  // sides over many regrowths.
  std::vector<float> all;
  ActivationHistogram h;
  std::vector<double> widths;
  for (int k = 0; k < 6; ++k) {
    std::vector<float> b = Gaussian(20000, std::pow(4.0, k), 10 + k);
    for (float& x : b) x += (k % 2 ? 0.5f : -0.3f) * std::pow(4.0f, k);
    h.Add(b.data(), static_cast<int64_t>(b.size()));
    all.insert(all.end(), b.begin(), b.end());
    widths.push_back(h.bin_width());
    EXPECT_LE(h.range_lo(), h.min());
    EXPECT_GE(h.range_hi(), h.max());
    EXPECT_EQ(BinTotal(h), h.count());
  }
  for (size_t i = 1; i < widths.size(); ++i) {  // grown by integer factors
    const double f = widths[i] / widths[i - 1];
    EXPECT_NEAR(f, std::round(f), 1e-9 * f) << "step " << i;
  }
  EXPECT_GT(widths.back(), widths.front() * 100);
  EXPECT_EQ(h.count(), static_cast<int64_t>(all.size()));
  EXPECT_EQ(h.min(), *std::min_element(all.begin(), all.end()));
  EXPECT_EQ(h.max(), *std::max_element(all.begin(), all.end()));
  for (double pct : {60.0, 90.0, 99.0, 99.9}) {
    const ActivationRange r = Choose(h, CalibrationMethod::kPercentile, 8, false, pct);
    EXPECT_NEAR(r.hi, ExactAbsPercentile(all, pct), 2 * h.bin_width()) << pct;
  }
}

TEST(CalibrationTest, RangeGrowthAcrossManyOrdersOfMagnitude) {
  // A jump by a factor far above num_bins takes the merge's sign-only path.
  ActivationHistogram h(64);
  const std::vector<float> tiny = {1e-30f, -2e-30f, 3e-30f};
  const std::vector<float> huge = {1e30f, -5e29f};
  h.Add(tiny.data(), 3);
  h.Add(huge.data(), 2);
  EXPECT_EQ(BinTotal(h), 5);
  EXPECT_LE(h.range_lo(), -5e29);
  EXPECT_GE(h.range_hi(), 1e30);
  // The tiny values collapse onto the two bins around 0.
  EXPECT_EQ(h.bins()[h.zero_bin()], 2);
  EXPECT_EQ(h.bins()[h.zero_bin() - 1], 1);
  for (CalibrationMethod m : kAllMethods) {
    EXPECT_TRUE(std::isfinite(Choose(h, m).hi)) << CalibrationMethodName(m);
  }
}

TEST(CalibrationTest, MinMaxEqualsTrueExtremes) {
  std::vector<float> v = Gaussian(5000, 1.0, 2);
  v.push_back(-7.25f);
  v.push_back(3.5f);
  const ActivationHistogram h = HistogramOf(v);
  ActivationRange r = Choose(h, CalibrationMethod::kMinMax);
  EXPECT_EQ(r.hi, 7.25f);
  EXPECT_EQ(r.lo, -7.25f);
  r = Choose(h, CalibrationMethod::kMinMax, 8, /*is_unsigned=*/true);
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_EQ(r.hi, h.max());
  EXPECT_GE(r.hi, 3.5f);
}

TEST(CalibrationTest, OutliersShrinkRangeForPercentileMseKl) {
  // MSE only clips outliers whose share p is well below the rounding noise
  // per unit range, 1/(12*127^2) ~ 5e-6 at 8 bits (its optimum is about
  // max * p / (p + 5e-6)), so 3 outliers need millions of samples; KL cannot
  // go below 2^(bits-1) = 128 bins, ~1/8 of max with 2048 bins.
  std::vector<float> v = Gaussian(4000000, 1.0, 3);
  for (float x : {100.0f, -90.0f, 95.0f}) v.push_back(x);
  const ActivationHistogram h = HistogramOf(v);
  const float minmax = Choose(h, CalibrationMethod::kMinMax).hi;
  EXPECT_EQ(minmax, 100.0f);
  for (CalibrationMethod m :
       {CalibrationMethod::kPercentile, CalibrationMethod::kMse, CalibrationMethod::kKl}) {
    const ActivationRange r = Choose(h, m);
    EXPECT_LT(r.hi, 0.3f * minmax) << CalibrationMethodName(m);
    EXPECT_GT(r.hi, 3.5f) << CalibrationMethodName(m);  // still covers the bulk
    EXPECT_EQ(r.lo, -r.hi) << CalibrationMethodName(m);
  }
  EXPECT_LT(Choose(h, CalibrationMethod::kPercentile).hi, 0.05f * minmax);
  // Clipping the outliers must pay off in actual quantization error.
  EXPECT_LT(QuantMse(v, Choose(h, CalibrationMethod::kMse), 8),
            0.5 * QuantMse(v, {-minmax, minmax}, 8));
}

TEST(CalibrationTest, MseBeatsMinMaxAt4BitsOnLaplace) {
  const std::vector<float> v = Laplace(200000, 4);
  const ActivationHistogram h = HistogramOf(v);
  const ActivationRange minmax = Choose(h, CalibrationMethod::kMinMax, 4);
  const ActivationRange mse = Choose(h, CalibrationMethod::kMse, 4);
  EXPECT_LT(mse.hi, minmax.hi);
  const double err_mse = QuantMse(v, mse, 4);
  const double err_minmax = QuantMse(v, minmax, 4);
  EXPECT_LT(err_mse, 0.5 * err_minmax);
  // The histogram's expected-MSE model should find (near) the true optimum:
  // nudging the threshold either way must not help by more than 2%.
  for (float f : {0.8f, 1.25f}) {
    EXPECT_LT(err_mse, 1.02 * QuantMse(v, {-mse.hi * f, mse.hi * f}, 4)) << f;
  }
}

TEST(CalibrationTest, UnsignedReluDataGetsZeroLo) {
  std::vector<float> v = Gaussian(100000, 1.0, 5);
  for (float& x : v) x = std::max(x, 0.0f);
  const ActivationHistogram h = HistogramOf(v);
  EXPECT_EQ(h.range_lo(), 0.0);
  for (CalibrationMethod m : kAllMethods) {
    const ActivationRange r = Choose(h, m, 8, /*is_unsigned=*/true);
    EXPECT_EQ(r.lo, 0.0f) << CalibrationMethodName(m);
    EXPECT_GT(r.hi, 2.0f) << CalibrationMethodName(m);
    EXPECT_LE(r.hi, h.max()) << CalibrationMethodName(m);
  }
}

TEST(CalibrationTest, KlOnUniformChoosesNearMax) {
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(200000);
  for (float& x : v) x = d(rng);
  ActivationHistogram h = HistogramOf(v);
  const float max_abs = std::max(-h.min(), h.max());
  EXPECT_GT(Choose(h, CalibrationMethod::kKl).hi, 0.97f * max_abs);
  for (float& x : v) x = std::fabs(x);
  h = HistogramOf(v);
  EXPECT_GT(Choose(h, CalibrationMethod::kKl, 8, true).hi, 0.97f * h.max());
}

TEST(CalibrationTest, NonFiniteValuesIgnoredAndCounted) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> v = {1.0f, nan, -2.0f, inf, 0.5f, -inf, nan};
  const ActivationHistogram h = HistogramOf(v);
  EXPECT_EQ(h.count(), 3);
  EXPECT_EQ(h.nonfinite_count(), 4);
  EXPECT_EQ(h.min(), -2.0f);
  EXPECT_EQ(h.max(), 1.0f);
  EXPECT_EQ(BinTotal(h), 3);
  for (CalibrationMethod m : kAllMethods) {
    const ActivationRange r = Choose(h, m);
    EXPECT_TRUE(std::isfinite(r.hi) && r.hi > 0.0f && r.hi <= 2.0f) << CalibrationMethodName(m);
  }
}

TEST(CalibrationTest, EmptyHistogramIsFailedPrecondition) {
  ActivationHistogram h;
  absl::StatusOr<ActivationRange> r = ChooseRange(h, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("no finite values"));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  h.Add(&nan, 1);
  r = ChooseRange(h, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("1 NaN/Inf"));
}

TEST(CalibrationTest, BadSpecIsInvalidArgument) {
  const ActivationHistogram h = HistogramOf(Gaussian(100, 1.0, 7));
  for (int bits : {1, 9}) {
    CalibrationSpec spec;
    spec.bits = bits;
    EXPECT_EQ(ChooseRange(h, spec).status().code(), absl::StatusCode::kInvalidArgument) << bits;
  }
  for (double pct : {50.0, 100.5, std::numeric_limits<double>::quiet_NaN()}) {
    CalibrationSpec spec;
    spec.method = CalibrationMethod::kPercentile;
    spec.percentile = pct;
    absl::StatusOr<ActivationRange> r = ChooseRange(h, spec);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << pct;
    EXPECT_THAT(r.status().message(), HasSubstr("percentile"));
  }
}

TEST(CalibrationTest, AllZeroDataGetsPositiveRange) {
  const std::vector<float> zeros(1000, 0.0f);
  ActivationHistogram h = HistogramOf(zeros);
  EXPECT_TRUE(h.bins().empty());
  for (CalibrationMethod m : kAllMethods) EXPECT_GT(Choose(h, m).hi, 0.0f);
  // Zeros seen before the first nonzero value still land in the histogram.
  const float one = 1.0f;
  h.Add(&one, 1);
  EXPECT_EQ(BinTotal(h), 1001);
  EXPECT_EQ(h.bins()[h.zero_bin()], 1000);
}

}  // namespace
}  // namespace qs::quant
