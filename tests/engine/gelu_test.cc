// The GELU loop dense layers apply after their primitive (engine/ops/gelu.h)
// against the exact erf form, element for element, including the clamp
// region, NaN and infinities, and the vector loop against the scalar one.
#include "engine/ops/gelu.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace qs {
namespace {

// The erf form itself, in double precision.
double GeluErfExact(float x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

std::vector<float> Sweep() {
  std::vector<float> x;
  for (int i = -200000; i <= 200000; ++i) x.push_back(static_cast<float>(i) * 6e-5f);  // ±12
  for (float v : {1e-30f, -1e-30f, 0.f, -0.f, 30.f, -30.f, 1e30f, -1e30f}) x.push_back(v);
  return x;
}

TEST(GeluTest, MatchesTheErfFormWithinFloatPrecision) {
  std::vector<float> x = Sweep(), y = x;
  GeluErfInPlace(y.data(), static_cast<int64_t>(y.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = GeluErfExact(x[i]);
    // 3.3e-7 of erf, scaled by x/2, plus float rounding of the result.
    const double tolerance = 2e-7 * std::fabs(x[i]) + 2e-7 * std::fabs(want) + 1e-37;
    ASSERT_NEAR(y[i], want, tolerance) << "x = " << x[i];
    // Against the exact value rounded to float, as std::erf in float would give.
    worst = std::max(worst, static_cast<double>(std::fabs(y[i] - static_cast<float>(want))));
  }
  EXPECT_GT(worst, 0.0);  // an approximation, not std::erf in disguise
}

TEST(GeluTest, VectorLoopEqualsScalarLoopAtEveryLength) {
  // Every 7th value of the sweep: each prefix spans the whole ±12 range,
  // not only the saturated tail.
  std::vector<float> x;
  const std::vector<float> sweep = Sweep();
  for (size_t i = 0; i < sweep.size(); i += 7) x.push_back(sweep[i]);
  for (int64_t n : {0, 1, 7, 8, 9, 16383, 16384, 16385, 40000}) {
    std::vector<float> a(x.begin(), x.begin() + n), b = a;
    GeluErfInPlace(a.data(), n);
    GeluErfInPlaceScalar(b.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(a[i], b[i], 1e-6f * (1.f + std::fabs(x[i]))) << "n " << n << " i " << i;
    }
  }
}

TEST(GeluTest, NanStaysNanAndInfinitiesSaturate) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x(25, std::nanf(""));  // 3 vectors and a scalar tail
  x[3] = inf;
  x[4] = -inf;
  x[20] = inf;
  GeluErfInPlace(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_TRUE(std::isnan(x[0]));
  EXPECT_TRUE(std::isnan(x[24]));  // the scalar tail
  EXPECT_EQ(x[3], inf);
  EXPECT_TRUE(x[4] == 0.f || std::isnan(x[4]));  // -inf · 0 in the erf form
  EXPECT_EQ(x[20], inf);
}

}  // namespace
}  // namespace qs
