#include "engine/quant/weight_quantizer.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <set>

#include "engine/quant/bit_packing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs::quant {
namespace {

using ::testing::HasSubstr;

// Box–Muller over mt19937 so the data is identical on every standard library
// (std::normal_distribution is implementation-defined).
Tensor Gaussian(Shape shape, uint32_t seed, float sigma = 1.0f, float mean = 0.0f) {
  Tensor t(DataType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  auto uniform = [&] { return (static_cast<double>(rng()) + 1.0) / 4294967297.0; };
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    const double z = std::sqrt(-2.0 * std::log(uniform())) * std::cos(2.0 * M_PI * uniform());
    p[i] = mean + sigma * static_cast<float>(z);
  }
  return t;
}

double Mse(const Tensor& a, const Tensor& b) {
  double sum = 0.0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    sum += d * d;
  }
  return sum / static_cast<double>(a.num_elements());
}

WeightQuantSpec Spec(WeightMethod method, int bits, int max_abs_code = 127,
                     bool symmetric = true, bool per_channel = true) {
  WeightQuantSpec s;
  s.method = method;
  s.bits = bits;
  s.max_abs_code = max_abs_code;
  s.symmetric = symmetric;
  s.per_channel = per_channel;
  return s;
}

QuantizedWeights MustQuantize(const Tensor& w, const WeightQuantSpec& spec) {
  auto q = QuantizeWeights(w, spec);
  EXPECT_TRUE(q.ok()) << q.status();
  return q.ok() ? *std::move(q) : QuantizedWeights{};
}

double QuantMse(const Tensor& w, const WeightQuantSpec& spec) {
  return Mse(w, MustQuantize(w, spec).Dequantize());
}

// Every spec the API accepts: all methods × bits 1..8 minus the documented
// invalid combinations.
std::vector<WeightQuantSpec> AllValidSpecs(int max_abs_code) {
  std::vector<WeightQuantSpec> specs;
  for (int bits = 1; bits <= 8; ++bits) {
    if (bits >= 2) specs.push_back(Spec(WeightMethod::kLinear, bits, max_abs_code, true));
    specs.push_back(Spec(WeightMethod::kLinear, bits, max_abs_code, false));
    if (bits >= 2) specs.push_back(Spec(WeightMethod::kLog2, bits, max_abs_code));
    specs.push_back(Spec(WeightMethod::kKMeans, bits, max_abs_code));
    if (bits == 1) specs.push_back(Spec(WeightMethod::kSign, 1, max_abs_code));
  }
  return specs;
}

std::string Describe(const WeightQuantSpec& s) {
  return std::string(WeightMethodName(s.method)) + " bits=" + std::to_string(s.bits) +
         " M=" + std::to_string(s.max_abs_code) + (s.symmetric ? " sym" : " asym");
}

TEST(WeightQuantizerTest, MethodNames) {
  EXPECT_STREQ(WeightMethodName(WeightMethod::kLinear), "linear");
  EXPECT_STREQ(WeightMethodName(WeightMethod::kLog2), "log2");
  EXPECT_STREQ(WeightMethodName(WeightMethod::kKMeans), "kmeans");
  EXPECT_STREQ(WeightMethodName(WeightMethod::kSign), "sign");
}

TEST(WeightQuantizerTest, LinearRoundTripWithinHalfStep) {
  const Tensor w = Gaussian({16, 200}, 1);
  for (bool symmetric : {true, false}) {
    for (int bits : {2, 3, 4, 8}) {
      for (int m : {63, 127}) {
        const auto q = MustQuantize(w, Spec(WeightMethod::kLinear, bits, m, symmetric));
        const Tensor deq = q.Dequantize();
        ASSERT_EQ(q.channels, 16);
        ASSERT_EQ(deq.shape(), w.shape());
        for (int64_t c = 0; c < 16; ++c) {
          const float half = q.scales[c] / 2 * (1 + 1e-5f);
          for (int64_t i = c * 200; i < (c + 1) * 200; ++i) {
            ASSERT_LE(std::fabs(w.data<float>()[i] - deq.data<float>()[i]), half)
                << "sym=" << symmetric << " bits=" << bits << " M=" << m << " i=" << i;
          }
        }
      }
    }
  }
}

TEST(WeightQuantizerTest, LinearSymmetricScaleAndRange) {
  const Tensor w = Tensor::FromVector<float>({2, 3}, {-2.0f, 0.5f, 1.0f, 0.0f, 3.0f, -0.1f});
  const auto q8 = MustQuantize(w, Spec(WeightMethod::kLinear, 8, 127));
  EXPECT_FLOAT_EQ(q8.scales[0], 2.0f / 127);
  EXPECT_FLOAT_EQ(q8.scales[1], 3.0f / 127);
  EXPECT_EQ(q8.codes[0], -127);
  EXPECT_EQ(q8.codes[4], 127);
  EXPECT_THAT(q8.zero_points, ::testing::ElementsAre(0, 0));
  // 4-bit: Q = 7; 8-bit at M = 63: Q = 63.
  EXPECT_FLOAT_EQ(MustQuantize(w, Spec(WeightMethod::kLinear, 4)).scales[0], 2.0f / 7);
  EXPECT_FLOAT_EQ(MustQuantize(w, Spec(WeightMethod::kLinear, 8, 63)).scales[1], 3.0f / 63);
}

TEST(WeightQuantizerTest, PerChannelBeatsPerTensorOnUnevenChannels) {
  Tensor w = Gaussian({8, 256}, 2);
  float* p = w.data<float>();
  for (int64_t c = 0; c < 8; ++c) {  // ranges from 1e-3 to 1e+0.5
    for (int64_t i = 0; i < 256; ++i) p[c * 256 + i] *= std::pow(10.0f, -3.0f + 0.5f * c);
  }
  const double per_channel = QuantMse(w, Spec(WeightMethod::kLinear, 8, 127, true, true));
  const double per_tensor = QuantMse(w, Spec(WeightMethod::kLinear, 8, 127, true, false));
  EXPECT_LT(per_channel * 2, per_tensor);
  const auto qt = MustQuantize(w, Spec(WeightMethod::kLinear, 8, 127, true, false));
  EXPECT_EQ(qt.channels, 1);
  EXPECT_EQ(qt.scales.size(), 1u);
}

TEST(WeightQuantizerTest, AsymmetricBeatsSymmetricOnPositiveWeights) {
  Tensor w = Gaussian({8, 256}, 3);
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    w.data<float>()[i] = std::fabs(w.data<float>()[i]) + 0.1f;
  }
  for (int bits : {2, 4}) {
    const double sym = QuantMse(w, Spec(WeightMethod::kLinear, bits, 127, true));
    const double asym = QuantMse(w, Spec(WeightMethod::kLinear, bits, 127, false));
    EXPECT_LT(asym * 3, sym) << "bits=" << bits;  // ~2x finer step → ~4x lower MSE
  }
  // At 8 bits the ±127 grid caps one-sided data at 128 levels either way.
  EXPECT_LE(QuantMse(w, Spec(WeightMethod::kLinear, 8, 127, false)),
            QuantMse(w, Spec(WeightMethod::kLinear, 8, 127, true)) * 1.0001);
  // The folded zero point shows up as the first level code; executable z is 0.
  const auto q = MustQuantize(w, Spec(WeightMethod::kLinear, 4, 127, false));
  EXPECT_FALSE(q.symmetric);
  EXPECT_EQ(q.level_codes[0], 0);  // range [0, max]: z = 0
  for (int32_t z : q.zero_points) EXPECT_EQ(z, 0);
}

TEST(WeightQuantizerTest, AsymmetricEightBitUsesMoreLevelsOnBalancedData) {
  // Sign-balanced data: asymmetric 8-bit may use ~255 levels on the ±127 grid.
  const Tensor w = Tensor::FromVector<float>({1, 3}, {-1.0f, 0.0f, 1.0f});
  const auto q = MustQuantize(w, Spec(WeightMethod::kLinear, 8, 127, false));
  EXPECT_THAT(q.codes, ::testing::ElementsAre(-127, 0, 127));
  EXPECT_FLOAT_EQ(q.scales[0], 1.0f / 127);
}

TEST(WeightQuantizerTest, AllCodesWithinGridForEveryMethodAndBits) {
  const Tensor w = Gaussian({8, 300}, 4, 0.5f, 0.2f);
  for (int m : {63, 127}) {
    for (const auto& spec : AllValidSpecs(m)) {
      const auto q = MustQuantize(w, spec);
      ASSERT_EQ(q.codes.size(), 2400u) << Describe(spec);
      for (int8_t code : q.codes) ASSERT_LE(std::abs(code), m) << Describe(spec);
      for (int8_t code : q.level_codes) ASSERT_LE(std::abs(code), m) << Describe(spec);
      EXPECT_EQ(q.level_codes.size(), 8u << spec.bits) << Describe(spec);
      EXPECT_EQ(q.UnpackCodes(), q.codes) << Describe(spec);
    }
  }
}

TEST(WeightQuantizerTest, PackUnpackRoundTrip) {
  std::mt19937 rng(5);
  for (int bits : {1, 2, 3, 4, 5, 8}) {
    for (int count : {1, 7, 8, 9, 33, 1000}) {
      std::vector<uint8_t> idx(count);
      for (auto& v : idx) v = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      std::vector<uint8_t> packed;
      PackIndices(idx, bits, packed);
      ASSERT_EQ(static_cast<int64_t>(packed.size()), PackedBytes(count, bits));
      std::vector<uint8_t> back(count);
      UnpackIndices(packed, bits, back);
      EXPECT_EQ(back, idx) << "bits=" << bits << " count=" << count;
    }
  }
  // Layout is LSB-first: 4-bit {1, 2} → 0x21; 1-bit {1,0,0,0,0,0,0,1} → 0x81.
  std::vector<uint8_t> out;
  PackIndices(std::vector<uint8_t>{1, 2}, 4, out);
  PackIndices(std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 0, 1}, 1, out);
  EXPECT_THAT(out, ::testing::ElementsAre(0x21, 0x81));
}

TEST(WeightQuantizerTest, QuantizedPackingRoundTripsWithOddChannelSizes) {
  // 37 weights per channel: channels end mid-byte for every width but 8.
  const Tensor w = Gaussian({5, 37}, 6);
  for (int bits : {1, 2, 3, 4, 5, 8}) {
    for (auto method : {WeightMethod::kLinear, WeightMethod::kKMeans}) {
      const auto q = MustQuantize(w, Spec(method, bits, 127, bits > 1 ? true : false));
      EXPECT_EQ(static_cast<int64_t>(q.packed.size()), 5 * PackedBytes(37, bits));
      EXPECT_EQ(q.UnpackCodes(), q.codes) << WeightMethodName(method) << " bits=" << bits;
    }
  }
}

TEST(WeightQuantizerTest, StorageBytes) {
  const Tensor w = Gaussian({64, 1600}, 7);
  const auto q8 = MustQuantize(w, Spec(WeightMethod::kLinear, 8, 63));
  const auto q4 = MustQuantize(w, Spec(WeightMethod::kLinear, 4, 63));
  const auto q1 = MustQuantize(w, Spec(WeightMethod::kSign, 1, 63));
  EXPECT_EQ(q8.storage_bytes(), 64 * 1600 + 64 * 4);
  EXPECT_EQ(q4.storage_bytes(), 64 * 800 + 64 * 4);
  EXPECT_EQ(q1.storage_bytes(), 64 * 200 + 64 * 4);
  EXPECT_LE(q4.storage_bytes(), 0.55 * q8.storage_bytes());
  EXPECT_LE(q1.storage_bytes(), 0.2 * q8.storage_bytes());
  // Extras: asymmetric zero points (1 B/channel), kmeans codebooks (2^bits B/channel).
  EXPECT_EQ(MustQuantize(w, Spec(WeightMethod::kLinear, 4, 63, false)).storage_bytes(),
            q4.storage_bytes() + 64);
  EXPECT_EQ(MustQuantize(w, Spec(WeightMethod::kKMeans, 4, 63)).storage_bytes(),
            q4.storage_bytes() + 64 * 16);
  EXPECT_EQ(MustQuantize(w, Spec(WeightMethod::kLog2, 4, 63)).storage_bytes(),
            q4.storage_bytes());
}

TEST(WeightQuantizerTest, MseOrderingOnGaussianWeights) {
  const Tensor w = Gaussian({64, 1600}, 8);
  struct Row { const char* name; WeightQuantSpec spec; };
  const Row rows[] = {
      {"linear 8", Spec(WeightMethod::kLinear, 8, 63)},
      {"linear 4", Spec(WeightMethod::kLinear, 4, 63)},
      {"linear 2", Spec(WeightMethod::kLinear, 2, 63)},
      {"log2 4", Spec(WeightMethod::kLog2, 4, 63)},
      {"kmeans 4", Spec(WeightMethod::kKMeans, 4, 63)},
      {"sign 1", Spec(WeightMethod::kSign, 1, 63)},
  };
  std::vector<double> mse;
  for (const auto& r : rows) {
    const auto q = MustQuantize(w, r.spec);
    mse.push_back(Mse(w, q.Dequantize()));
    std::printf("[ MSE      ] %-9s mse=%.6g grid_mapping_mse=%.3g storage=%lld B\n", r.name,
                mse.back(), q.grid_mapping_mse, static_cast<long long>(q.storage_bytes()));
  }
  EXPECT_LT(mse[0], mse[1]);
  EXPECT_LT(mse[1], mse[2]);
  EXPECT_LT(mse[4], mse[1]);  // kmeans 4 < linear 4
  EXPECT_LT(mse[0], 1e-3);
  EXPECT_LT(mse[5], 0.5);     // sign: 1 - 2/π ≈ 0.36 for unit Gaussian
}

TEST(WeightQuantizerTest, KMeansReportsGridMappingError) {
  const Tensor w = Gaussian({4, 500}, 9);
  const auto q = MustQuantize(w, Spec(WeightMethod::kKMeans, 4, 7));
  // A 15-value grid cannot hold 16 arbitrary centroids exactly.
  EXPECT_GT(q.grid_mapping_mse, 0.0);
  EXPECT_LT(q.grid_mapping_mse, Mse(w, q.Dequantize()));
  EXPECT_EQ(MustQuantize(w, Spec(WeightMethod::kLinear, 4)).grid_mapping_mse, 0.0);
  EXPECT_EQ(MustQuantize(w, Spec(WeightMethod::kLog2, 4)).grid_mapping_mse, 0.0);
  // Few distinct values: the codebook is exact; with matching grid, zero error.
  const Tensor t = Tensor::FromVector<float>({1, 6}, {-2, -1, 0, 1, 2, 1});
  const auto exact = MustQuantize(t, Spec(WeightMethod::kKMeans, 3, 2));
  EXPECT_EQ(Mse(t, exact.Dequantize()), 0.0);
  EXPECT_EQ(exact.grid_mapping_mse, 0.0);
}

TEST(WeightQuantizerTest, Log2LevelsArePowersOfTwo) {
  const Tensor w = Gaussian({8, 400}, 10);
  const auto q = MustQuantize(w, Spec(WeightMethod::kLog2, 4, 63));
  std::set<int> seen;
  for (int8_t code : q.codes) {
    const int a = std::abs(code);
    EXPECT_TRUE(a == 0 || (a & (a - 1)) == 0) << int{code};
    seen.insert(code);
  }
  // bits=4, M=63 → {0, ±1, ±2, ±4, ±8, ±16, ±32}: 13 levels, max |code| 32.
  EXPECT_LE(seen.size(), 13u);
  EXPECT_TRUE(seen.count(32) || seen.count(-32));
  for (int8_t code : q.level_codes) {
    const int a = std::abs(code);
    EXPECT_TRUE(a == 0 || ((a & (a - 1)) == 0 && a <= 32));
  }
  float max_abs = 0.0f;
  for (int64_t i = 0; i < 400; ++i) max_abs = std::max(max_abs, std::fabs(w.data<float>()[i]));
  EXPECT_FLOAT_EQ(q.scales[0], max_abs / 32);
  // Nearest by value: with s = 1 (max 4 at K=2), 2.9 → 2, 3.1 → 4, 0.49 → 0.
  const Tensor t = Tensor::FromVector<float>({1, 4}, {4.0f, 2.9f, -3.1f, 0.49f});
  EXPECT_THAT(MustQuantize(t, Spec(WeightMethod::kLog2, 3)).codes,
              ::testing::ElementsAre(4, 2, -4, 0));
}

TEST(WeightQuantizerTest, SignScaleIsMeanAbs) {
  const Tensor w = Tensor::FromVector<float>({2, 4}, {1, -3, 0, 2, -0.5f, -0.5f, 1, 2});
  const auto q = MustQuantize(w, Spec(WeightMethod::kSign, 1));
  EXPECT_FLOAT_EQ(q.scales[0], 1.5f);
  EXPECT_FLOAT_EQ(q.scales[1], 1.0f);
  EXPECT_THAT(q.codes, ::testing::ElementsAre(1, -1, 1, 1, -1, -1, 1, 1));  // sign(0) = +1
  EXPECT_EQ(q.UnpackCodes(), q.codes);
}

TEST(WeightQuantizerTest, Deterministic) {
  Tensor w = Gaussian({16, 300}, 11);
  // Repeated values force duplicate quantiles → empty clusters → seeded re-seeding.
  for (int64_t i = 0; i < w.num_elements(); i += 3) w.data<float>()[i] = 0.25f;
  for (const auto& spec : AllValidSpecs(127)) {
    WeightQuantSpec s = spec;
    s.seed = 42;
    const auto a = MustQuantize(w, s);
    const auto b = MustQuantize(w, s);
    EXPECT_EQ(a.codes, b.codes) << Describe(s);
    EXPECT_EQ(a.scales, b.scales) << Describe(s);
    EXPECT_EQ(a.packed, b.packed) << Describe(s);
  }
}

TEST(WeightQuantizerTest, AllZeroChannelGetsUnitScaleAndZeroCodes) {
  Tensor w = Gaussian({3, 10}, 12);
  for (int i = 10; i < 20; ++i) w.data<float>()[i] = 0.0f;
  for (const auto& spec : AllValidSpecs(127)) {
    const auto q = MustQuantize(w, spec);
    EXPECT_EQ(q.scales[1], 1.0f) << Describe(spec);
    for (int i = 10; i < 20; ++i) EXPECT_EQ(q.codes[i], 0) << Describe(spec);
    EXPECT_EQ(q.UnpackCodes(), q.codes) << Describe(spec);
  }
}

TEST(WeightQuantizerTest, WithScalesRequantizes) {
  const Tensor w = Gaussian({4, 100}, 13);
  const auto base = MustQuantize(w, Spec(WeightMethod::kLinear, 8));
  auto same = QuantizeWeightsWithScales(w, Spec(WeightMethod::kLinear, 8), base.scales);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->codes, base.codes);
  // Halving the scale clips the tails at ±127 and doubles the other codes.
  std::vector<float> half = base.scales;
  for (float& s : half) s /= 2;
  auto clipped = QuantizeWeightsWithScales(w, Spec(WeightMethod::kLinear, 8), half);
  ASSERT_TRUE(clipped.ok());
  EXPECT_EQ(clipped->scales, half);
  for (int8_t c : clipped->codes) EXPECT_LE(std::abs(c), 127);
  for (const auto& spec : AllValidSpecs(63)) {
    auto q = QuantizeWeightsWithScales(w, spec, {0.01f, 0.02f, 0.03f, 0.04f});
    ASSERT_TRUE(q.ok()) << Describe(spec) << q.status();
    EXPECT_EQ(q->scales, (std::vector<float>{0.01f, 0.02f, 0.03f, 0.04f})) << Describe(spec);
    for (int8_t c : q->codes) ASSERT_LE(std::abs(c), 63) << Describe(spec);
    EXPECT_EQ(q->UnpackCodes(), q->codes) << Describe(spec);
  }
  EXPECT_FALSE(QuantizeWeightsWithScales(w, Spec(WeightMethod::kLinear, 8), {1.0f}).ok());
  EXPECT_FALSE(QuantizeWeightsWithScales(w, Spec(WeightMethod::kLinear, 8), {1, 0, 1, 1}).ok());
}

void ExpectInvalid(const Tensor& w, const WeightQuantSpec& spec, const std::string& text) {
  auto q = QuantizeWeights(w, spec);
  ASSERT_FALSE(q.ok()) << Describe(spec);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(q.status().message()), HasSubstr(text));
}

TEST(WeightQuantizerTest, Errors) {
  const Tensor w = Gaussian({2, 3}, 14);
  ExpectInvalid(w, Spec(WeightMethod::kLinear, 0), "bits");
  ExpectInvalid(w, Spec(WeightMethod::kLinear, 9), "bits");
  ExpectInvalid(w, Spec(WeightMethod::kSign, 2), "sign");
  ExpectInvalid(w, Spec(WeightMethod::kLinear, 1, 127, true), "sign");
  ExpectInvalid(w, Spec(WeightMethod::kLog2, 1), "log2");
  ExpectInvalid(w, Spec(WeightMethod::kLinear, 8, 128), "max_abs_code");
  ExpectInvalid(w, Spec(WeightMethod::kLinear, 8, 0), "max_abs_code");
  ExpectInvalid(Tensor::FromVector<float>({}, {1.0f}), Spec(WeightMethod::kLinear, 8), "rank");
  EXPECT_TRUE(QuantizeWeights(Tensor::FromVector<float>({}, {1.0f}),
                              Spec(WeightMethod::kLinear, 8, 127, true, false)).ok());
  ExpectInvalid(Tensor::FromVector<int8_t>({2}, {1, 2}), Spec(WeightMethod::kLinear, 8),
                "float32");
  ExpectInvalid(Tensor(), Spec(WeightMethod::kLinear, 8), "empty");
  ExpectInvalid(Tensor(DataType::kFloat32, {0, 4}), Spec(WeightMethod::kLinear, 8), "empty");
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    Tensor t = w.Clone();
    t.data<float>()[4] = bad;
    ExpectInvalid(t, Spec(WeightMethod::kKMeans, 4), "non-finite");
  }
}

}  // namespace
}  // namespace qs::quant
