// The QDQ ONNX export (engine/quant/qdq_export.h): exported variants of the
// bundled Fashion-MNIST CNN pass onnx::checker, hold only standard ops, and
// score the same accuracy as the int8 variants they came from when the
// engine loads them back; a synthetic QDense on a rank-3 input takes the
// MatMul form and computes what the int8 kernel does.
#include "engine/quant/qdq_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/cpu_features.h"
#include "engine/evaluate.h"
#include "engine/model_builder.h"
#include "engine/onnx_importer.h"
#include "engine/ops/quantized_layer.h"
#include "engine/quant/weight_quantizer.h"
#include "onnx/checker.h"
#include "onnx/onnx_pb.h"

namespace qs {
namespace {

using quant::ExportQdqOnnx;

const std::string kData = "/usr/share/datasets/fashion-mnist";

onnx::ModelProto Parse(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

int CountOps(const onnx::ModelProto& m, const std::string& op) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == op;
  return n;
}

void ExpectStandardOnly(const onnx::ModelProto& m) {
  EXPECT_EQ(m.ir_version(), 8);
  EXPECT_EQ(m.producer_name(), "quantserve");
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_GE(m.opset_import(0).version(), 13);
  for (const auto& node : m.graph().node()) {
    EXPECT_EQ(node.domain(), "") << node.name();
    for (const auto& a : node.attribute()) {
      EXPECT_THAT(a.name(), testing::Not(testing::AnyOf("x_scale", "w_bits", "w_method", "w_shape",
                                                        "out_dtype", "out_scale")))
          << node.name();
    }
  }
}

class QdqExportFmnistTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kData + "/t10k-images-idx3-ubyte.gz")) return;
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
    for (int bits : {8, 4}) {
      quant::QuantPolicy p;
      p.weights.method = quant::WeightMethod::kLinear;
      p.weights.bits = bits;
      spec.variants.push_back({bits == 8 ? "w8a8" : "w4a8", p});
    }
    auto built = BuildModel(spec);
    ASSERT_TRUE(built.ok()) << built.status();
    auto data = LoadDataset(eval, {1, 28, 28});
    ASSERT_TRUE(data.ok()) << data.status();
    model_ = new BuiltModel(std::move(*built));
    data_ = new Dataset(std::move(*data));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete data_;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "Fashion-MNIST is not installed";
  }

  static void CheckVariant(const std::string& name) {
    const BuiltVariant* v = model_->Find(name);
    ASSERT_NE(v, nullptr);
    auto bytes = ExportQdqOnnx(v->model->graph(), "fmnist_cnn_" + name);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    const onnx::ModelProto m = Parse(*bytes);
    ExpectStandardOnly(m);
    EXPECT_EQ(CountOps(m, "Conv"), 2);
    EXPECT_EQ(CountOps(m, "Gemm"), 2);
    EXPECT_GE(CountOps(m, "QuantizeLinear"), 1);
    // Activations and weights of all four layers.
    EXPECT_GE(CountOps(m, "DequantizeLinear"), 8);

    // Round trip through a file and the ONNX checker.
    const std::string path = testing::TempDir() + "/qdq_" + name + ".onnx";
    {
      std::ofstream f(path, std::ios::binary);
      f.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    }
    EXPECT_NO_THROW(onnx::checker::check_model(path));

    auto graph = ImportOnnxBytes(*bytes, "exported " + name);
    ASSERT_TRUE(graph.ok()) << graph.status();
    auto compiled = CompiledModel::Compile(std::move(*graph));
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    auto eval = EvaluateClassifier(**compiled, *data_, 256);
    ASSERT_TRUE(eval.ok()) << eval.status();
    std::printf("%s: variant accuracy %.4f, exported QDQ accuracy %.4f, %zu bytes\n", name.c_str(),
                v->report.accuracy, eval->accuracy, bytes->size());
    EXPECT_NEAR(eval->accuracy, v->report.accuracy, 0.001);
  }

  static BuiltModel* model_;
  static Dataset* data_;
};

BuiltModel* QdqExportFmnistTest::model_ = nullptr;
Dataset* QdqExportFmnistTest::data_ = nullptr;

TEST_F(QdqExportFmnistTest, W8A8ExportKeepsAccuracy) { CheckVariant("w8a8"); }
TEST_F(QdqExportFmnistTest, W4A8ExportKeepsAccuracy) { CheckVariant("w4a8"); }

// x [batch, 2, 4] → QuantizeLinear (int8) → QDense 4→3 (4-bit weights,
// bias, fused LeakyRelu + Clip) → y [batch, 2, 3] f32.
Graph SyntheticDense() {
  Graph g;
  g.name = "synthetic";
  g.opset = 13;
  g.inputs = {{"x", DataType::kFloat32, {-1, 2, 4}}};
  g.outputs = {{"y", DataType::kFloat32, {-1, 2, 3}}};
  std::vector<float> w = {0.5f, -0.25f, 0.75f, 0.1f, -0.6f,  0.3f,
                          0.2f, -0.9f,  0.05f, 0.4f, -0.35f, 0.8f};
  quant::WeightQuantSpec spec;
  spec.bits = 4;
  spec.max_abs_code = MaxSafeWeightCode();
  auto qw = quant::QuantizeWeights(Tensor::FromVector<float>({3, 4}, w), spec);
  EXPECT_TRUE(qw.ok()) << qw.status();
  g.initializers["x_scale"] = Tensor::FromVector<float>({}, {0.02f});
  g.initializers["x_zp"] = Tensor(DataType::kInt8, {});
  g.initializers["packed"] =
      Tensor::FromVector<uint8_t>({static_cast<int64_t>(qw->packed.size())}, qw->packed);
  g.initializers["levels"] = Tensor::FromVector<int8_t>({3, 16}, qw->level_codes);
  g.initializers["scales"] = Tensor::FromVector<float>({3}, qw->scales);
  g.initializers["bias"] = Tensor::FromVector<float>({3}, {0.1f, -0.2f, 0.05f});
  g.nodes.push_back({"quantize", "QuantizeLinear", "", {"x", "x_scale", "x_zp"}, {"xq"}, {}, {}});
  Node d{"dense", "QDense", kQuantDomain, {"xq", "packed", "levels", "scales", "bias"}, {"y"},
         {},      {}};
  d.attributes = {{"x_scale", 0.02f},
                  {"w_bits", int64_t{4}},
                  {"w_method", std::string("linear")},
                  {"w_shape", std::vector<int64_t>{3, 4}},
                  {"out_dtype", int64_t{1}},
                  {"out_scale", 1.f}};
  d.fused_activations = {{FusedActivation::Kind::kLeakyRelu, 0.1f},
                         {FusedActivation::Kind::kClip, -0.5f, 1.f}};
  g.nodes.push_back(d);
  return g;
}

TEST(QdqExportTest, DenseOnRank3InputBecomesMatMulAndMatchesInt8Kernel) {
  const Graph g = SyntheticDense();
  auto bytes = ExportQdqOnnx(g, "synthetic");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto m = Parse(*bytes);
  ExpectStandardOnly(m);
  EXPECT_EQ(CountOps(m, "MatMul"), 1);
  EXPECT_EQ(CountOps(m, "Add"), 1);
  EXPECT_EQ(CountOps(m, "LeakyRelu"), 1);
  EXPECT_EQ(CountOps(m, "Clip"), 1);
  EXPECT_EQ(CountOps(m, "Gemm"), 0);
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");

  auto int8 = CompiledModel::Compile(g);
  ASSERT_TRUE(int8.ok()) << int8.status();
  auto reimported = ImportOnnxBytes(*bytes, "exported synthetic");
  ASSERT_TRUE(reimported.ok()) << reimported.status();
  auto qdq = CompiledModel::Compile(std::move(*reimported));
  ASSERT_TRUE(qdq.ok()) << qdq.status();
  std::vector<float> x(3 * 2 * 4);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.37f * static_cast<float>(i % 7) - 1.1f;
  const NamedTensors in = {{"x", Tensor::FromVector<float>({3, 2, 4}, x)}};
  auto a = (*int8)->Run(in);
  auto b = (*qdq)->Run(in);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  ASSERT_EQ((*a)[0].shape(), (*b)[0].shape());
  for (int64_t i = 0; i < (*a)[0].num_elements(); ++i) {
    EXPECT_NEAR((*a)[0].data<float>()[i], (*b)[0].data<float>()[i], 1e-4) << i;
  }
}

TEST(QdqExportTest, UnknownCustomOpIsAnErrorNamingTheNode) {
  Graph g = SyntheticDense();
  g.nodes[1].op_type = "QMystery";
  auto bytes = ExportQdqOnnx(g, "synthetic");
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(bytes.status().message(), testing::HasSubstr("dense"));
  EXPECT_THAT(bytes.status().message(), testing::HasSubstr("QMystery"));
}

TEST(QdqExportTest, LegacyClipAttributesBecomeInputs) {
  Graph g;
  g.opset = 6;
  g.inputs = {{"x", DataType::kFloat32, {-1, 4}}};
  g.outputs = {{"y", DataType::kFloat32, {-1, 4}}};
  Node clip{"clip", "Clip", "", {"x"}, {"y"}, {}, {}};
  clip.attributes = {{"min", -1.f}, {"max", 2.f}};
  g.nodes.push_back(clip);
  auto bytes = ExportQdqOnnx(g, "legacy");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto m = Parse(*bytes);
  EXPECT_EQ(m.opset_import(0).version(), 13);
  ASSERT_EQ(m.graph().node_size(), 1);
  EXPECT_EQ(m.graph().node(0).input_size(), 3);
  EXPECT_EQ(m.graph().node(0).attribute_size(), 0);
}

}  // namespace
}  // namespace qs
