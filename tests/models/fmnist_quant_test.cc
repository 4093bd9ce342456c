// Acceptance of the quantization pipeline on the bundled Fashion-MNIST CNN:
// calibrated on the training split, evaluated on the 10,000 test images.
// Builds every variant of the policy once (shared calibration) and checks
// accuracy drops, optimizer wins, storage ratios and that quantized layers
// really run on oneDNN int8 primitives.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "engine/model_builder.h"

namespace qs {
namespace {

using quant::QuantPolicy;
using quant::WeightMethod;

const std::string kData = "/usr/share/datasets/fashion-mnist";

QuantPolicy Weights(WeightMethod method, int bits) {
  QuantPolicy p;
  p.weights.method = method;
  p.weights.bits = bits;
  return p;
}

QuantPolicy Optimized(QuantPolicy p, bool rounding, bool scales) {
  quant::OptimizePolicy o;
  o.algorithm = quant::Optimizer::kAdam;
  o.loss = quant::Loss::kMse;
  o.learn_rounding = rounding;
  o.learn_scales = scales;
  p.optimize = o;
  return p;
}

// Log2 levels are coarse near the top of the range; distilling the channel
// scales against the fp32 logits recovers most of the loss.
QuantPolicy Log2Distilled() {
  QuantPolicy p = Weights(WeightMethod::kLog2, 4);
  quant::OptimizePolicy o;
  o.loss = quant::Loss::kCrossEntropy;
  o.learn_rounding = false;
  o.learn_scales = true;
  o.iterations = 1000;
  o.learning_rate = 0.05;
  p.optimize = o;
  return p;
}

QuantPolicy Activations4(quant::CalibrationMethod m) {
  QuantPolicy p = Weights(WeightMethod::kLinear, 8);
  p.activations.bits = 4;
  p.activations.calibration = m;
  return p;
}

class FmnistQuantTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kData + "/train-images-idx3-ubyte.gz")) return;
    ModelSpec spec;
    spec.name = "fmnist_cnn";
    spec.path = QS_SOURCE_DIR "/models/fmnist_cnn.onnx";
    DatasetSpec eval;
    eval.inputs = kData + "/t10k-images-idx3-ubyte.gz";
    eval.labels = kData + "/t10k-labels-idx1-ubyte.gz";
    spec.evaluation = eval;
    DatasetSpec calib;
    calib.inputs = kData + "/train-images-idx3-ubyte.gz";
    calib.labels = kData + "/train-labels-idx1-ubyte.gz";
    calib.limit = 1000;
    spec.calibration = calib;
    spec.eval_batch_size = 256;
    QuantPolicy auto_policy;
    auto_policy.auto_bits = quant::AutoBits{0.5, {2, 4, 8}};
    spec.variants = {
        {"fp32", std::nullopt},
        {"w8a8", Weights(WeightMethod::kLinear, 8)},
        {"w4a8_rtn", Weights(WeightMethod::kLinear, 4)},
        {"w4a8", Optimized(Weights(WeightMethod::kLinear, 4), true, true)},
        {"w2a8_rtn", Weights(WeightMethod::kLinear, 2)},
        {"w2a8", Optimized(Weights(WeightMethod::kLinear, 2), true, true)},
        {"w1a8_mean", Weights(WeightMethod::kSign, 1)},
        {"w1a8", Optimized(Weights(WeightMethod::kSign, 1), false, true)},
        {"kmeans4", Weights(WeightMethod::kKMeans, 4)},
        {"log2_4", Log2Distilled()},
        {"w8a4_minmax", Activations4(quant::CalibrationMethod::kMinMax)},
        {"w8a4_percentile", Activations4(quant::CalibrationMethod::kPercentile)},
        {"w8a4_mse", Activations4(quant::CalibrationMethod::kMse)},
        {"w8a4_kl", Activations4(quant::CalibrationMethod::kKl)},
        {"auto", auto_policy},
    };
    spec.progress = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
    const auto start = std::chrono::steady_clock::now();
    auto built = BuildModel(spec);
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(built.ok()) << built.status();
    model_ = new BuiltModel(std::move(*built));
    for (const auto& v : model_->variants) {
      std::printf("%-16s bits %2d acc %.4f agree %.4f bytes %7lld build %.2fs\n",
                  v.report.name.c_str(), v.report.weight_bits, v.report.accuracy,
                  v.report.top1_agreement, static_cast<long long>(v.report.weight_bytes),
                  v.report.build_seconds);
    }
  }
  static void TearDownTestSuite() { delete model_; }

  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "Fashion-MNIST is not installed";
  }
  static const VariantReport& R(const std::string& name) { return model_->Find(name)->report; }
  // Accuracy drop against fp32, in points.
  static double Drop(const std::string& name) {
    return 100 * (R("fp32").accuracy - R(name).accuracy);
  }

  static BuiltModel* model_;
  static double seconds_;
};

BuiltModel* FmnistQuantTest::model_ = nullptr;
double FmnistQuantTest::seconds_ = 0;

TEST_F(FmnistQuantTest, W8A8LosesAtMostAThirdOfAPoint) { EXPECT_LE(Drop("w8a8"), 0.3); }

TEST_F(FmnistQuantTest, OptimizedW4A8IsWithinOnePointAndBeatsRoundToNearest) {
  EXPECT_LE(Drop("w4a8"), 1.0);
  EXPECT_GT(R("w4a8").accuracy, R("w4a8_rtn").accuracy);
}

TEST_F(FmnistQuantTest, OptimizedW2A8BeatsRoundToNearest) {
  EXPECT_GT(R("w2a8").accuracy, R("w2a8_rtn").accuracy);
}

TEST_F(FmnistQuantTest, OptimizedSignScalesBeatMeanAbs) {
  EXPECT_GT(R("w1a8").accuracy, R("w1a8_mean").accuracy);
}

TEST_F(FmnistQuantTest, NonLinearMethodsStayWithinBudget) {
  EXPECT_LE(Drop("kmeans4"), 1.0);
  EXPECT_LE(Drop("log2_4"), 2.0);
}

TEST_F(FmnistQuantTest, SomeCalibrationBeatsMinMaxAtFourBitActivations) {
  const double minmax = R("w8a4_minmax").accuracy;
  EXPECT_GT(std::max({R("w8a4_percentile").accuracy, R("w8a4_mse").accuracy,
                      R("w8a4_kl").accuracy}),
            minmax);
}

TEST_F(FmnistQuantTest, AutoMeetsItsBudgetWithFewerBytesThanW8A8) {
  EXPECT_LE(Drop("auto"), 0.5);
  EXPECT_LT(R("auto").weight_bytes, R("w8a8").weight_bytes);
}

TEST_F(FmnistQuantTest, SubByteWeightsAreStoredPacked) {
  const double w8 = static_cast<double>(R("w8a8").weight_bytes);
  EXPECT_LE(R("w4a8").weight_bytes, 0.55 * w8);
  EXPECT_LE(R("w1a8").weight_bytes, 0.2 * w8);
  EXPECT_LT(w8, 0.3 * R("fp32").weight_bytes);
}

TEST_F(FmnistQuantTest, QuantizedLayersRunOnInt8Primitives) {
  for (const char* name : {"w8a8", "w4a8", "w1a8", "kmeans4"}) {
    const auto& layers = R(name).layers;
    ASSERT_EQ(layers.size(), 4u) << name;
    for (const auto& l : layers) {
      ASSERT_TRUE(l.quantized) << name << " " << l.name << ": " << l.reason;
      EXPECT_THAT(l.src_dt, testing::AnyOf("u8", "s8")) << name << " " << l.name;
      EXPECT_EQ(l.wei_dt, "s8") << name << " " << l.name;
      EXPECT_THAT(l.impl, testing::AnyOf(testing::HasSubstr("int8"), testing::HasSubstr("s8")))
          << name << " " << l.name;
    }
    // int8 codes flow from conv1 into conv2 without an fp32 round trip.
    EXPECT_EQ(layers[0].dst_dt, "u8") << name;
    EXPECT_EQ(layers.back().dst_dt, "f32") << name;
  }
}

// Build = calibrate, quantize, optimize, compile (and auto's search); the
// evaluation of each variant on 10,000 images is reported separately.
TEST_F(FmnistQuantTest, AllVariantsBuildInUnderAMinute) {
  double build = 0;
  for (const auto& v : model_->variants) build += v.report.build_seconds;
  std::printf("build %.1fs of %.1fs in all\n", build, seconds_);
  EXPECT_LT(build, 60.0);
}

}  // namespace
}  // namespace qs
