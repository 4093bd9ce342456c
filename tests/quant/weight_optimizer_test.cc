#include "engine/quant/weight_optimizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs::quant {
namespace {

using ::testing::HasSubstr;

// Box–Muller over mt19937 so the data is identical on every standard library.
std::vector<float> Gaussian(int64_t n, uint32_t seed, double sigma = 1.0) {
  std::mt19937 rng(seed);
  auto uniform = [&] { return (static_cast<double>(rng()) + 1.0) / 4294967297.0; };
  std::vector<float> v(n);
  for (auto& x : v) {
    x = static_cast<float>(sigma * std::sqrt(-2.0 * std::log(uniform())) *
                           std::cos(2.0 * M_PI * uniform()));
  }
  return v;
}

struct Layer {
  Tensor w;  // [oc, k]
  LayerSamples samples;
};

// W ~ N(0, 1/k); inputs x = A z with A ~ N(0, 1/k) [k, k] and z ~ N(0, 1), so
// the input features are correlated (the case where output-aware rounding
// beats per-weight rounding).
// With `relu`, x = max(A z, 0): non-negative with a common mean, like real
// post-activation inputs.
Layer MakeLayer(int64_t oc, int64_t k, int64_t rows, uint32_t seed, bool bias = false,
                bool relu = false) {
  Layer l;
  l.w = Tensor::FromVector<float>({oc, k}, Gaussian(oc * k, seed, 1.0 / std::sqrt(k)));
  const std::vector<float> a = Gaussian(k * k, seed + 1, 1.0 / std::sqrt(k));
  const std::vector<float> z = Gaussian(rows * k, seed + 2);
  std::vector<float> x(rows * k, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) x[r * k + i] += a[i * k + j] * z[r * k + j];
      if (relu) x[r * k + i] = std::max(x[r * k + i], 0.0f);
    }
  }
  l.samples.inputs = Tensor::FromVector<float>({rows, k}, x);
  if (bias) l.samples.bias = Gaussian(oc, seed + 3, 0.5);
  return l;
}

WeightQuantSpec Spec(WeightMethod method, int bits, int max_abs_code = 63,
                     bool symmetric = true) {
  WeightQuantSpec s;
  s.method = method;
  s.bits = bits;
  s.max_abs_code = max_abs_code;
  s.symmetric = symmetric;
  return s;
}

OptimizePolicy Policy(Optimizer alg = Optimizer::kAdam, bool rounding = true,
                      bool scales = false, Loss loss = Loss::kMse) {
  OptimizePolicy p;
  p.algorithm = alg;
  p.learn_rounding = rounding;
  p.learn_scales = scales;
  p.loss = loss;
  return p;
}

OptimizeResult Optimize(const Layer& l, const WeightQuantSpec& spec, const OptimizePolicy& policy) {
  auto rtn = QuantizeWeights(l.w, spec);
  EXPECT_TRUE(rtn.ok()) << rtn.status();
  auto r = OptimizeLayerWeights(l.w, *rtn, spec, l.samples, policy);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : OptimizeResult{};
}

// Independent (naive, double) evaluation of the loss of weights `wq` on all rows.
double DirectLoss(const Layer& l, const Tensor& wq, Loss loss) {
  const int64_t oc = l.w.shape()[0], k = l.w.shape()[1], rows = l.samples.inputs.shape()[0];
  const float* x = l.samples.inputs.data<float>();
  double total = 0.0;
  std::vector<double> y(oc), yq(oc);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < oc; ++o) {
      y[o] = yq[o] = l.samples.bias.empty() ? 0.0 : l.samples.bias[o];
      for (int64_t i = 0; i < k; ++i) {
        y[o] += static_cast<double>(l.w.data<float>()[o * k + i]) * x[r * k + i];
        yq[o] += static_cast<double>(wq.data<float>()[o * k + i]) * x[r * k + i];
      }
    }
    if (loss == Loss::kMse) {
      for (int64_t o = 0; o < oc; ++o) total += (yq[o] - y[o]) * (yq[o] - y[o]) / oc;
      continue;
    }
    double zp = 0.0, zq = 0.0, my = y[0], mq = yq[0];
    for (int64_t o = 0; o < oc; ++o) my = std::max(my, y[o]), mq = std::max(mq, yq[o]);
    for (int64_t o = 0; o < oc; ++o) zp += std::exp(y[o] - my), zq += std::exp(yq[o] - mq);
    for (int64_t o = 0; o < oc; ++o) {
      const double p = std::exp(y[o] - my) / zp;
      total -= p * (yq[o] - mq - std::log(zq));
    }
  }
  return total / rows;
}

void Print(const char* what, const OptimizeResult& r) {
  std::printf("%-28s RTN %.6g -> %.6g (%.1f%%)%s\n", what, r.initial_loss, r.final_loss,
              100.0 * r.final_loss / r.initial_loss, r.reverted ? " [reverted]" : "");
}

TEST(WeightOptimizerTest, AdaRoundBeatsRoundToNearest4And2Bit) {
  const Layer l = MakeLayer(32, 128, 1024, 7);
  const OptimizeResult r4 = Optimize(l, Spec(WeightMethod::kLinear, 4), Policy());
  Print("linear 4-bit adaround", r4);
  EXPECT_LT(r4.final_loss, 0.8 * r4.initial_loss);
  EXPECT_EQ(r4.iterations, 300);
  const OptimizeResult r2 = Optimize(l, Spec(WeightMethod::kLinear, 2), Policy());
  Print("linear 2-bit adaround", r2);
  EXPECT_LT(r2.final_loss, 0.9 * r2.initial_loss);
  // The reported losses are the real full-set mse of RTN and of the result.
  auto rtn = QuantizeWeights(l.w, Spec(WeightMethod::kLinear, 4));
  EXPECT_NEAR(r4.initial_loss, DirectLoss(l, rtn->Dequantize(), Loss::kMse), 1e-4 * r4.initial_loss);
  EXPECT_NEAR(r4.final_loss, DirectLoss(l, r4.weights.Dequantize(), Loss::kMse), 1e-4 * r4.initial_loss);
}

TEST(WeightOptimizerTest, LearnedScalesHelp2BitLinear) {
  const Layer l = MakeLayer(32, 128, 1024, 11);
  const OptimizeResult s = Optimize(l, Spec(WeightMethod::kLinear, 2), Policy(Optimizer::kAdam, false, true));
  Print("linear 2-bit scales", s);
  EXPECT_LT(s.final_loss, 0.95 * s.initial_loss);
  const OptimizeResult both = Optimize(l, Spec(WeightMethod::kLinear, 2), Policy(Optimizer::kAdam, true, true));
  Print("linear 2-bit rounding+scales", both);
  EXPECT_LT(both.final_loss, s.final_loss);
}

TEST(WeightOptimizerTest, SignLearnedAlphaBeatsMeanAbs) {
  const Layer l = MakeLayer(32, 128, 1024, 13, false, /*relu=*/true);
  const WeightQuantSpec spec = Spec(WeightMethod::kSign, 1);
  const QuantizedWeights rtn = *QuantizeWeights(l.w, spec);
  // With the signs b fixed, the output-optimal α of a channel is
  // Σ_x (b·x)(w·x) / Σ_x (b·x)² (least squares); mean |w| only minimizes the weight error.
  QuantizedWeights best = rtn;
  const int64_t k = 128;
  const float* x = l.samples.inputs.data<float>();
  for (int64_t o = 0; o < 32; ++o) {
    double num = 0.0, den = 0.0;
    for (int64_t r = 0; r < 1024; ++r) {
      double bx = 0.0, wx = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        bx += rtn.codes[o * k + i] * x[r * k + i];
        wx += l.w.data<float>()[o * k + i] * x[r * k + i];
      }
      num += bx * wx, den += bx * bx;
    }
    best.scales[o] = static_cast<float>(num / den);
  }
  const double best_loss = DirectLoss(l, best.Dequantize(), Loss::kMse);
  for (Optimizer alg : {Optimizer::kAdam, Optimizer::kSgd, Optimizer::kGd}) {
    const OptimizeResult r = Optimize(l, spec, Policy(alg, true, true));
    Print((std::string("sign alpha ") + OptimizerName(alg)).c_str(), r);
    std::printf("  least-squares alpha: %.6g\n", best_loss);
    EXPECT_LT(r.final_loss, 0.95 * r.initial_loss);
    EXPECT_LT(r.final_loss, 1.01 * best_loss);
    EXPECT_EQ(r.weights.codes, rtn.codes);  // signs fixed, only α moves
  }
}

TEST(WeightOptimizerTest, NonlinearMethodsLearnGridScale) {
  const Layer l = MakeLayer(32, 128, 512, 17);
  for (WeightMethod m : {WeightMethod::kLog2, WeightMethod::kKMeans}) {
    const OptimizeResult r = Optimize(l, Spec(m, 3), Policy(Optimizer::kAdam, true, true));
    Print(WeightMethodName(m), r);
    EXPECT_LE(r.final_loss, r.initial_loss);
  }
}

TEST(WeightOptimizerTest, EveryAlgorithmReducesLoss) {
  const Layer l = MakeLayer(32, 128, 512, 19);
  for (Optimizer alg : {Optimizer::kGd, Optimizer::kSgd, Optimizer::kAdam}) {
    const OptimizeResult r = Optimize(l, Spec(WeightMethod::kLinear, 4), Policy(alg));
    Print(OptimizerName(alg), r);
    EXPECT_FALSE(r.reverted) << OptimizerName(alg);
    EXPECT_LT(r.final_loss, 0.8 * r.initial_loss) << OptimizerName(alg);
  }
}

TEST(WeightOptimizerTest, CrossEntropyHead) {
  const Layer l = MakeLayer(10, 64, 1024, 23, /*bias=*/true);
  const OptimizeResult r =
      Optimize(l, Spec(WeightMethod::kLinear, 2), Policy(Optimizer::kAdam, true, false, Loss::kCrossEntropy));
  Print("10-class head 2-bit CE", r);
  // The fp32 teacher's own entropy is the floor; the excess over it is the KL.
  const double entropy = DirectLoss(l, l.w, Loss::kCrossEntropy);
  std::printf("  teacher entropy %.6g: KL %.4g -> %.4g\n", entropy, r.initial_loss - entropy,
              r.final_loss - entropy);
  EXPECT_FALSE(r.reverted);
  EXPECT_LT(r.final_loss - entropy, 0.8 * (r.initial_loss - entropy));
  EXPECT_NEAR(r.final_loss, DirectLoss(l, r.weights.Dequantize(), Loss::kCrossEntropy), 1e-4);
}

TEST(WeightOptimizerTest, DeterministicUnderSeed) {
  const Layer l = MakeLayer(32, 128, 512, 29);
  OptimizePolicy p = Policy(Optimizer::kSgd, true, true);
  p.seed = 5;
  const OptimizeResult a = Optimize(l, Spec(WeightMethod::kLinear, 3), p);
  const OptimizeResult b = Optimize(l, Spec(WeightMethod::kLinear, 3), p);
  EXPECT_EQ(a.weights.codes, b.weights.codes);
  EXPECT_EQ(a.weights.scales, b.weights.scales);
  EXPECT_EQ(a.final_loss, b.final_loss);
}

TEST(WeightOptimizerTest, CodesInGridAndPackedConsistent) {
  const Layer l = MakeLayer(16, 36, 256, 31);
  const Shape conv = {16, 4, 3, 3};  // the caller's original conv shape
  WeightQuantSpec per_tensor = Spec(WeightMethod::kLinear, 3);
  per_tensor.per_channel = false;  // one scale; the packed stream is one "channel"
  const std::vector<WeightQuantSpec> specs = {
      Spec(WeightMethod::kLinear, 8), Spec(WeightMethod::kLinear, 7),
      Spec(WeightMethod::kLinear, 4, 63, /*symmetric=*/false), Spec(WeightMethod::kLinear, 8, 63, false),
      Spec(WeightMethod::kLog2, 4), Spec(WeightMethod::kKMeans, 3), Spec(WeightMethod::kSign, 1),
      per_tensor};
  for (const WeightQuantSpec& spec : specs) {
    auto rtn = QuantizeWeights(l.w.Reshaped(conv), spec);
    ASSERT_TRUE(rtn.ok());
    auto r = OptimizeLayerWeights(l.w, *rtn, spec, l.samples, Policy(Optimizer::kAdam, true, true));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->weights.shape, conv);
    for (int8_t c : r->weights.codes) ASSERT_LE(std::abs(c), 63);
    EXPECT_EQ(r->weights.UnpackCodes(), r->weights.codes) << WeightMethodName(spec.method);
    EXPECT_EQ(r->weights.packed.size(), rtn->packed.size());
    EXPECT_LE(r->final_loss, r->initial_loss);
  }
}

TEST(WeightOptimizerTest, NeverWorseThanRoundToNearest) {
  const Layer l = MakeLayer(16, 64, 256, 37);
  const WeightQuantSpec spec = Spec(WeightMethod::kLinear, 4);
  OptimizePolicy p = Policy(Optimizer::kGd, false, true);
  p.learning_rate = 1e4;  // wild steps: scales collapse to the floor
  const OptimizeResult r = Optimize(l, spec, p);
  auto rtn = QuantizeWeights(l.w, spec);
  EXPECT_TRUE(r.reverted);
  EXPECT_GT(r.optimized_loss, r.initial_loss);
  EXPECT_EQ(r.final_loss, r.initial_loss);
  EXPECT_EQ(r.weights.codes, rtn->codes);
  EXPECT_EQ(r.weights.scales, rtn->scales);
}

TEST(WeightOptimizerTest, NothingToLearnReturnsInitial) {
  const Layer l = MakeLayer(8, 16, 64, 41);
  const OptimizeResult r = Optimize(l, Spec(WeightMethod::kSign, 1), Policy(Optimizer::kAdam, true, false));
  EXPECT_EQ(r.iterations, 0);
  EXPECT_EQ(r.final_loss, r.initial_loss);
}

TEST(WeightOptimizerTest, ValidatesInputs) {
  const Layer l = MakeLayer(8, 16, 64, 43);
  const WeightQuantSpec spec = Spec(WeightMethod::kLinear, 4);
  const QuantizedWeights rtn = *QuantizeWeights(l.w, spec);
  auto err = [&](const Tensor& w, const QuantizedWeights& q, const LayerSamples& s,
                 const OptimizePolicy& p) {
    auto r = OptimizeLayerWeights(w, q, spec, s, p);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  LayerSamples wrong_k{Tensor(DataType::kFloat32, {64, 15}), {}};
  EXPECT_THAT(err(l.w, rtn, wrong_k, Policy()), HasSubstr("K = 15"));
  LayerSamples empty{Tensor(DataType::kFloat32, {0, 16}), {}};
  EXPECT_THAT(err(l.w, rtn, empty, Policy()), HasSubstr("non-empty"));
  LayerSamples bias{l.samples.inputs, std::vector<float>(7, 0.0f)};
  EXPECT_THAT(err(l.w, rtn, bias, Policy()), HasSubstr("bias has 7"));
  OptimizePolicy p = Policy();
  p.iterations = 0;
  EXPECT_THAT(err(l.w, rtn, l.samples, p), HasSubstr("iterations"));
  p = Policy(Optimizer::kSgd);
  p.batch_size = 0;
  EXPECT_THAT(err(l.w, rtn, l.samples, p), HasSubstr("batch_size"));
  const QuantizedWeights other = *QuantizeWeights(l.w.Reshaped({4, 32}), spec);
  EXPECT_THAT(err(l.w, other, l.samples, Policy()), HasSubstr("do not match"));
  EXPECT_THAT(err(l.w.Reshaped({128}), rtn, l.samples, Policy()), HasSubstr("[OC, K]"));
  Tensor nan = l.samples.inputs.Clone();
  nan.data<float>()[5] = NAN;
  EXPECT_THAT(err(l.w, rtn, LayerSamples{nan, {}}, Policy()), HasSubstr("non-finite"));
}

// The bundled model's biggest layer: [64, 1600] with ~4000 sample rows.
TEST(WeightOptimizerTest, TimingLargestLayer) {
  const int64_t oc = 64, k = 1600, rows = 4000;
  Layer l;
  l.w = Tensor::FromVector<float>({oc, k}, Gaussian(oc * k, 51, 1.0 / std::sqrt(k)));
  // Correlated inputs without a k×k mix: neighbouring features share terms.
  const std::vector<float> z = Gaussian(rows * (k + 8), 52);
  std::vector<float> x(rows * k);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      for (int j = 0; j < 8; ++j) x[r * k + i] += z[r * (k + 8) + i + j];
    }
  }
  l.samples.inputs = Tensor::FromVector<float>({rows, k}, x);
  for (int bits : {4, 2}) {
    const auto start = std::chrono::steady_clock::now();
    const OptimizeResult r = Optimize(l, Spec(WeightMethod::kLinear, bits), Policy());
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[64x1600] 4000 rows, %d-bit adam 300 it: %.3f s  ", bits, secs);
    Print("", r);
    EXPECT_LT(r.final_loss, r.initial_loss);
  }
}

}  // namespace
}  // namespace qs::quant
