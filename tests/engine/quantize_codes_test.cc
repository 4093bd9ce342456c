// The vector QuantizeLinear loop (engine/ops/quantize_codes.h) against the
// scalar one, element for element: ties (x.5 codes round to even), values
// beyond the code range, infinities, NaN, signed zeros, and every length
// from 0 to past two 32-element vector blocks (the scalar tail).
#include "engine/ops/quantize_codes.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace qs {
namespace {

std::vector<float> AdversarialInputs(float scale) {
  std::vector<float> x;
  for (int k = -300; k <= 300; ++k) x.push_back((k + 0.5f) * scale);  // ties
  for (int k = -300; k <= 300; ++k) x.push_back(k * scale * 0.37f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {inf, -inf, std::nanf(""), -0.f, 0.f, 1e30f, -1e30f,
                  std::numeric_limits<float>::denorm_min(), 127.5f * scale, -128.5f * scale}) {
    x.push_back(v);
  }
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 100.f * scale);
  for (int i = 0; i < 1000; ++i) x.push_back(normal(rng));
  return x;
}

TEST(QuantizeCodesTest, VectorLoopMatchesScalarForU8AndS8) {
  for (float scale : {0.02f, 1.f, 0.1234567f}) {
    const std::vector<float> x = AdversarialInputs(scale);
    const int64_t n = static_cast<int64_t>(x.size());
    for (float zp : {0.f, 128.f, 3.f}) {
      std::vector<uint8_t> got(n), want(n);
      QuantizeToU8(x.data(), n, scale, zp, got.data());
      QuantizeToU8Scalar(x.data(), n, scale, zp, want.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(got[i], want[i]) << "u8 x=" << x[i] << " scale=" << scale << " zp=" << zp;
      }
    }
    for (float zp : {0.f, -5.f}) {
      std::vector<int8_t> got(n), want(n);
      QuantizeToS8(x.data(), n, scale, zp, got.data());
      QuantizeToS8Scalar(x.data(), n, scale, zp, want.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(got[i], want[i]) << "s8 x=" << x[i] << " scale=" << scale << " zp=" << zp;
      }
    }
  }
}

TEST(QuantizeCodesTest, KnownCodes) {
  const float nan = std::nanf("");
  const std::vector<float> x = {0.5f, 1.5f, 2.5f, -0.5f, 300.f, -300.f, nan, 7.f};
  std::vector<float> padded;  // repeated past one vector block
  for (int r = 0; r < 5; ++r) padded.insert(padded.end(), x.begin(), x.end());
  std::vector<uint8_t> u(padded.size());
  QuantizeToU8(padded.data(), static_cast<int64_t>(padded.size()), 1.f, 10.f, u.data());
  std::vector<int8_t> s(padded.size());
  QuantizeToS8(padded.data(), static_cast<int64_t>(padded.size()), 1.f, 0.f, s.data());
  for (size_t i = 0; i < padded.size(); i += x.size()) {
    EXPECT_EQ(std::vector<int>(u.begin() + i, u.begin() + i + x.size()),
              (std::vector<int>{10, 12, 12, 10, 255, 0, 10, 17}))
        << "u8 block at " << i;
    EXPECT_EQ(std::vector<int>(s.begin() + i, s.begin() + i + x.size()),
              (std::vector<int>{0, 2, 2, 0, 127, -128, 0, 7}))
        << "s8 block at " << i;
  }
}

TEST(QuantizeCodesTest, EveryLengthAroundTheVectorBlocks) {
  std::vector<float> x(70);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 3.3f - 100.f;
  for (int64_t n = 0; n <= 70; ++n) {
    std::vector<uint8_t> got(71, 0xAB), want(71, 0xAB);
    QuantizeToU8(x.data(), n, 0.5f, 100.f, got.data());
    QuantizeToU8Scalar(x.data(), n, 0.5f, 100.f, want.data());
    ASSERT_EQ(got, want) << "n=" << n;  // including the untouched byte after n
  }
}


// DequantizeLinear's per-tensor loop: every code at every length, equal to
// (code - zero_point) · scale computed one element at a time.
TEST(QuantizeCodesTest, DequantizeEqualsTheScalarFormulaAtEveryLength) {
  std::vector<uint8_t> u(300);
  std::vector<int8_t> s(300);
  for (size_t i = 0; i < u.size(); ++i) {
    u[i] = static_cast<uint8_t>(i * 37);
    s[i] = static_cast<int8_t>(static_cast<uint8_t>(i * 37));
  }
  for (int64_t n : {0, 1, 7, 8, 9, 255, 256, 300}) {
    std::vector<float> yu(n), ys(n), want(n);
    DequantizeFromU8(u.data(), n, 0.0473f, 131, yu.data());
    DequantizeFromU8Scalar(u.data(), n, 0.0473f, 131, want.data());
    DequantizeFromS8(s.data(), n, 0.0211f, -3, ys.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(yu[i], want[i]) << "n " << n << " i " << i;
      ASSERT_EQ(yu[i], static_cast<float>(static_cast<int32_t>(u[i]) - 131) * 0.0473f);
      ASSERT_EQ(ys[i], static_cast<float>(static_cast<int32_t>(s[i]) + 3) * 0.0211f);
    }
  }
}

}  // namespace
}  // namespace qs
