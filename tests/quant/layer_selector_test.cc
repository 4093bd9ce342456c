// Matching: which layers of the bundled model a policy quantizes, in what
// order overrides apply, and the error for a pattern that matches nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/compiled_model.h"
#include "engine/onnx_importer.h"
#include "engine/quant/layer_selector.h"

namespace qs::quant {
namespace {

Graph BundledOptimized() {
  auto g = ImportOnnxFile(QS_SOURCE_DIR "/models/fmnist_cnn.onnx");
  auto m = CompiledModel::Compile(std::move(*g));
  return (*m)->graph();
}

TEST(LayerSelectorTest, SelectsConvAndGemmLayersInOrder) {
  auto plans = SelectLayers(BundledOptimized(), QuantPolicy{});
  ASSERT_TRUE(plans.ok()) << plans.status();
  std::vector<std::string> names;
  for (const auto& p : *plans) names.push_back(p.op + " " + p.node);
  EXPECT_THAT(names, testing::ElementsAre("Conv /0/Conv", "Conv /3/Conv", "Gemm /7/Gemm",
                                          "Gemm /9/Gemm"));
}

TEST(LayerSelectorTest, LaterOverridesWinAndFp32KeepsLayers) {
  QuantPolicy policy;
  policy.weights.bits = 4;
  LayerOverride convs;
  convs.op = "Conv";
  convs.weights = policy.weights;
  convs.weights->bits = 8;
  LayerOverride first;
  first.name = "/0/*";
  first.fp32 = true;
  policy.layers = {convs, first};
  auto plans = SelectLayers(BundledOptimized(), policy);
  ASSERT_TRUE(plans.ok()) << plans.status();
  EXPECT_TRUE((*plans)[0].fp32);
  EXPECT_FALSE((*plans)[1].fp32);
  EXPECT_EQ((*plans)[1].weights.bits, 8);
  EXPECT_EQ((*plans)[2].weights.bits, 4);
}

TEST(LayerSelectorTest, PatternMatchingNothingNamesItsLocationAndTheLayers) {
  QuantPolicy policy;
  LayerOverride o;
  o.name = "/fc2/*";
  o.fp32 = true;
  o.location = "config.yaml:30:13: models[0].variants[8].layers[1]";
  policy.layers = {o};
  auto plans = SelectLayers(BundledOptimized(), policy);
  ASSERT_FALSE(plans.ok());
  const std::string msg(plans.status().message());
  EXPECT_THAT(msg, testing::HasSubstr("config.yaml:30:13: models[0].variants[8].layers[1]"));
  EXPECT_THAT(msg, testing::HasSubstr("/fc2/*"));
  EXPECT_THAT(msg, testing::HasSubstr("Gemm '/9/Gemm'"));
}

}  // namespace
}  // namespace qs::quant
