// Quantized variants of the scikit-learn models through BuildModel, as
// `quantserve report` builds them: binned trees decide exactly like fp32
// (with float leaves the probabilities are bit-identical), integer leaves
// stay close, int8 linear/SVM layers run on oneDNN int8 primitives.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "engine/data/npy.h"
#include "engine/model_builder.h"

namespace qs {
namespace {

const std::string kDir = QS_SOURCE_DIR "/models/ml/";

DatasetSpec Npy(const std::string& inputs, const std::string& labels = "") {
  DatasetSpec d;
  d.format = DatasetSpec::Format::kNpy;
  d.inputs = kDir + inputs;
  d.labels = labels.empty() ? "" : kDir + labels;
  return d;
}

VariantSpec Trees(const std::string& name, int thresholds, int leaves) {
  quant::QuantPolicy p;
  p.trees = {thresholds, leaves};
  return {name, p};
}

BuiltModel Build(const std::string& model, const std::string& dataset,
                 std::vector<VariantSpec> variants) {
  ModelSpec spec;
  spec.name = model;
  spec.path = kDir + model + ".onnx";
  spec.variants = std::move(variants);
  spec.evaluation = Npy(dataset + "_test_x.npy", dataset + "_test_y.npy");
  spec.calibration = Npy(dataset + "_calib_x.npy");
  auto built = BuildModel(spec);
  EXPECT_TRUE(built.ok()) << built.status();
  return built.ok() ? std::move(*built) : BuiltModel{};
}

std::vector<Tensor> RunOn(const BuiltModel& m, const std::string& variant, const std::string& dataset) {
  auto x = ReadNpy(kDir + dataset + "_test_x.npy");
  auto out = m.Find(variant)->model->Run({{"input", *x}});
  EXPECT_TRUE(out.ok()) << out.status();
  return *out;
}

TEST(MlQuantTest, BinnedForestDecidesExactlyLikeFp32) {
  const BuiltModel m = Build("rf_digits", "digits",
                             {{"fp32", std::nullopt}, Trees("t8f32", 8, 32), Trees("t16l16", 16, 16),
                              Trees("t8l8", 8, 8)});
  ASSERT_EQ(m.variants.size(), 4u);
  const auto fp32 = RunOn(m, "fp32", "digits");
  // 8-bit codes with float leaves: the same leaves, so identical scores.
  const auto t8 = RunOn(m, "t8f32", "digits");
  EXPECT_THAT(t8[0].values<int64_t>(), testing::ElementsAreArray(fp32[0].values<int64_t>()));
  EXPECT_THAT(t8[1].values<float>(), testing::ElementsAreArray(fp32[1].values<float>()));
  // Integer leaves: probabilities within a few leaf steps.
  for (const char* v : {"t16l16", "t8l8"}) {
    const auto q = RunOn(m, v, "digits");
    double worst = 0;
    for (int64_t i = 0; i < q[1].num_elements(); ++i) {
      worst = std::max(worst, std::fabs(double{q[1].data<float>()[i]} - fp32[1].data<float>()[i]));
    }
    EXPECT_LT(worst, std::string(v) == "t8l8" ? 0.05 : 1e-3) << v;
    EXPECT_GE(m.Find(v)->report.top1_agreement, 0.99) << v;
  }
  // Smaller nodes and leaves.
  EXPECT_LT(m.Find("t8l8")->report.weight_bytes, m.Find("t16l16")->report.weight_bytes);
  EXPECT_LT(m.Find("t16l16")->report.weight_bytes, m.Find("fp32")->report.weight_bytes);
  EXPECT_EQ(m.Find("t8l8")->report.layers.at(0).src_dt, "u8");
}

TEST(MlQuantTest, Int8LinearAndSvmRunOnOneDnnInt8) {
  quant::QuantPolicy w8;  // 8-bit linear weights and activations: the defaults
  for (const auto& [model, dataset, min_agreement] :
       {std::tuple{"logreg_wine", "wine", 0.97}, {"svc_rbf_digits", "digits", 0.98},
        {"linsvc_breast_cancer", "breast_cancer", 0.97}}) {
    const BuiltModel m = Build(model, dataset, {{"fp32", std::nullopt}, {"w8a8", w8}});
    ASSERT_EQ(m.variants.size(), 2u) << model;
    const VariantReport& r = m.Find("w8a8")->report;
    EXPECT_GE(r.top1_agreement, min_agreement) << model;
    EXPECT_GE(r.accuracy, m.Find("fp32")->report.accuracy - 0.03) << model;
    ASSERT_EQ(r.layers.size(), 1u) << model;
    EXPECT_EQ(r.layers[0].src_dt, "u8") << model;
    EXPECT_EQ(r.layers[0].wei_dt, "s8") << model;
  }
}

TEST(MlQuantTest, LinearModelsRefuseOtherWidths) {
  quant::QuantPolicy w4;
  w4.weights.bits = 4;
  ModelSpec spec;
  spec.name = "logreg_wine";
  spec.path = kDir + "logreg_wine.onnx";
  spec.variants = {{"fp32", std::nullopt}, {"w4", w4}};
  spec.calibration = Npy("wine_calib_x.npy");
  auto built = BuildModel(spec);
  EXPECT_EQ(built.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(built.status().message(), testing::HasSubstr("8-bit"));
}

}  // namespace
}  // namespace qs
