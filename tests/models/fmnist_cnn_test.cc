// The bundled model end to end: fp32 outputs equal the training script's
// PyTorch logits, and accuracy on the 10,000 Fashion-MNIST test images
// matches the figure the script measured (models/fmnist_cnn.json).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/compiled_model.h"
#include "engine/data/dataset.h"
#include "engine/data/npy.h"
#include "engine/evaluate.h"
#include "engine/onnx_importer.h"

namespace qs {
namespace {

const std::string kModels = QS_SOURCE_DIR "/models";
const std::string kData = "/usr/share/datasets/fashion-mnist";

std::unique_ptr<CompiledModel> LoadBundled() {
  auto graph = ImportOnnxFile(kModels + "/fmnist_cnn.onnx");
  EXPECT_TRUE(graph.ok()) << graph.status();
  auto model = CompiledModel::Compile(std::move(*graph));
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(*model);
}

TEST(FmnistCnnTest, GraphIsFusedForOneDnn) {
  auto model = LoadBundled();
  std::vector<std::string> ops;
  for (const auto& n : model->graph().nodes) ops.push_back(n.op_type);
  // Relus are fused into Conv/Gemm as post-ops.
  EXPECT_THAT(ops, testing::ElementsAre("Conv", "MaxPool", "Conv", "MaxPool", "Flatten",
                                        "Gemm", "Gemm"));
  EXPECT_EQ(model->graph().nodes[0].fused_activations.size(), 1u);
  EXPECT_EQ(model->inputs()[0].shape, (Shape{-1, 1, 28, 28}));
  EXPECT_EQ(model->outputs()[0].shape, (Shape{-1, 10}));
}

TEST(FmnistCnnTest, LogitsMatchPyTorch) {
  auto model = LoadBundled();
  auto input = ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
  auto expected = ReadNpy(kModels + "/fmnist_cnn_first16_logits.npy");
  ASSERT_TRUE(input.ok() && expected.ok());
  auto out = model->Run({{"input", *input}});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].shape(), (Shape{16, 10}));
  for (int64_t i = 0; i < 160; ++i) {
    const float want = expected->data<float>()[i];
    EXPECT_NEAR((*out)[0].data<float>()[i], want, 1e-4 + 1e-4 * std::fabs(want)) << i;
  }
}

TEST(FmnistCnnTest, TestSetAccuracyMatchesTrainingScript) {
  if (!std::filesystem::exists(kData + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  std::ifstream meta_file(kModels + "/fmnist_cnn.json");
  const auto meta = nlohmann::json::parse(meta_file);
  const double script_accuracy = meta["test_accuracy"].get<double>();

  DatasetSpec spec;
  spec.inputs = kData + "/t10k-images-idx3-ubyte.gz";
  spec.labels = kData + "/t10k-labels-idx1-ubyte.gz";
  auto data = LoadDataset(spec, {1, 28, 28});
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), 10000);
  auto model = LoadBundled();
  auto result = EvaluateClassifier(*model, *data, 256);
  ASSERT_TRUE(result.ok()) << result.status();
  std::printf("engine fp32 accuracy %.4f (%lld/10000), training script %.4f\n",
              result->accuracy, static_cast<long long>(result->correct), script_accuracy);
  EXPECT_GE(result->accuracy, 0.90);
  EXPECT_NEAR(result->accuracy, script_accuracy, 0.0005);  // 0.05 points
}

}  // namespace
}  // namespace qs
