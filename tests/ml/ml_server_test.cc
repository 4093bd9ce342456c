// Classical ML models on the real server over real gRPC: a tree ensemble
// (random forest + ZipMap) and a linear model (Scaler + logistic
// regression), fp32 and quantized, through Predict and KServe ModelInfer —
// int64 labels and float probabilities equal scikit-learn's — and live
// drift comparing the probability outputs.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "engine/data/npy.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"
#include "tests/metrics/scrape.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;
const std::string kDir = QS_SOURCE_DIR "/models/ml/";

Tensor Load(const std::string& file) {
  auto t = ReadNpy(kDir + file);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : Tensor();
}

ModelConfig MlModel(const std::string& name, const std::string& dataset, VariantConfig quantized) {
  ModelConfig m;
  m.name = name;
  m.path = kDir + name + ".onnx";
  DatasetConfig calib;
  calib.format = DatasetConfig::Format::kNpy;
  calib.inputs = kDir + dataset + "_calib_x.npy";
  m.calibration = calib;
  m.variants = {VariantConfig{"fp32"}, quantized};
  m.default_variant = "fp32";
  m.drift.sample_rate = 1;
  m.drift.mode = DriftConfig::Mode::kMirror;
  return m;
}

ServerConfig TestConfig() {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "127.0.0.1:0";
  VariantConfig trees{"t8l8"};
  trees.trees = TreesConfig{8, 8};
  VariantConfig w8{"w8a8"};
  w8.weights = WeightQuantConfig{};
  w8.activations = ActivationQuantConfig{};
  config.models = {MlModel("rf_digits", "digits", trees), MlModel("logreg_wine", "wine", w8)};
  for (auto& m : config.models) {
    if (!m.variants[1].trees) m.variants[1].trees = TreesConfig{};
    if (!m.variants[1].weights) m.variants[1].weights = WeightQuantConfig{};
    if (!m.variants[1].activations) m.variants[1].activations = ActivationQuantConfig{};
  }
  return config;
}

class MlServerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = QuantServer::Start(TestConfig());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    ASSERT_TRUE(server_->LoadModels().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
  }
  static void TearDownTestSuite() {
    server_->Shutdown(std::chrono::milliseconds(100));
    delete server_;
    channel_.reset();
  }

  static v1::PredictRequest Request(const std::string& model, const Tensor& x, int rows,
                                    const std::string& variant = "") {
    v1::PredictRequest req;
    req.set_model(model);
    req.set_variant(variant);
    v1::Tensor* t = req.add_inputs();
    t->set_name("input");
    t->set_datatype(v1::FP32);
    t->add_shape(rows);
    t->add_shape(x.shape()[1]);
    t->mutable_float_data()->Add(x.data<float>(), x.data<float>() + rows * x.shape()[1]);
    return req;
  }

  // Predict on the first `rows` test rows; labels must equal scikit-learn's
  // and (fp32) probabilities be within 1e-5.
  void ExpectSklearnAnswers(const std::string& model, const std::string& dataset,
                            const std::string& prob_output, int rows) {
    const Tensor x = Load(dataset + "_test_x.npy");
    const Tensor labels = Load(model + "_labels.npy"), scores = Load(model + "_scores.npy");
    v1::PredictResponse resp;
    grpc::ClientContext ctx;
    auto stub = v1::InferenceService::NewStub(channel_);
    ASSERT_TRUE(stub->Predict(&ctx, Request(model, x, rows), &resp).ok());
    ASSERT_EQ(resp.outputs_size(), 2);
    EXPECT_EQ(resp.outputs(0).name(), "label");
    EXPECT_EQ(resp.outputs(0).datatype(), v1::INT64);
    ASSERT_EQ(resp.outputs(0).int64_data_size(), rows);
    for (int i = 0; i < rows; ++i) EXPECT_EQ(resp.outputs(0).int64_data(i), labels.data<int64_t>()[i]);
    EXPECT_EQ(resp.outputs(1).name(), prob_output);
    const int64_t classes = scores.shape()[1];
    ASSERT_EQ(resp.outputs(1).float_data_size(), rows * classes);
    for (int i = 0; i < rows * classes; ++i) {
      EXPECT_NEAR(resp.outputs(1).float_data(i), scores.data<float>()[i], 1e-5);
    }
  }

  static QuantServer* server_;
  static std::shared_ptr<grpc::Channel> channel_;
};

QuantServer* MlServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel> MlServerTest::channel_;

TEST_F(MlServerTest, TreeModelPredictMatchesScikitLearn) {
  ExpectSklearnAnswers("rf_digits", "digits", "output_probability", 20);
}

TEST_F(MlServerTest, TopKRanksTheProbabilities) {
  const Tensor x = Load("digits_test_x.npy");
  const Tensor labels = Load("rf_digits_labels.npy");
  v1::PredictRequest req = Request("rf_digits", x, 3);
  req.set_top_k(2);
  v1::PredictResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::InferenceService::NewStub(channel_)->Predict(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.top_k_size(), 3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(resp.top_k(i).indices_size(), 2);
    // Labels are the class indices 0-9 here.
    EXPECT_EQ(resp.top_k(i).indices(0), labels.data<int64_t>()[i]);
  }
}

TEST_F(MlServerTest, LinearModelPredictMatchesScikitLearn) {
  ExpectSklearnAnswers("logreg_wine", "wine", "probabilities", 20);
}

TEST_F(MlServerTest, KServeInfersLabelsOnTheQuantizedVariant) {
  const Tensor x = Load("wine_test_x.npy");
  const Tensor labels = Load("logreg_wine_labels.npy");
  inference::ModelInferRequest req;
  req.set_model_name("logreg_wine");
  req.set_model_version("w8a8");
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  in->add_shape(x.shape()[0]);
  in->add_shape(x.shape()[1]);
  in->mutable_contents()->mutable_fp32_contents()->Add(x.data<float>(),
                                                        x.data<float>() + x.num_elements());
  inference::ModelInferResponse resp;
  grpc::ClientContext ctx;
  auto stub = inference::GRPCInferenceService::NewStub(channel_);
  ASSERT_TRUE(stub->ModelInfer(&ctx, req, &resp).ok());
  ASSERT_GE(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).datatype(), "INT64");
  const int64_t n = x.shape()[0];
  ASSERT_EQ(resp.outputs(0).contents().int64_contents_size(), n);
  int agree = 0;
  for (int64_t i = 0; i < n; ++i) agree += resp.outputs(0).contents().int64_contents(i) == labels.data<int64_t>()[i];
  // int8 weights and features: nearly every label survives.
  EXPECT_GE(agree, n - 2) << agree << " of " << n;
}

TEST_F(MlServerTest, DriftComparesTheProbabilities) {
  const Labels q = {{"model", "rf_digits"}, {"variant", "t8l8"}};
  auto value = [&](const Scrape& s, const char* name) {
    const double v = s.Value(name, q);
    return std::isnan(v) ? 0.0 : v;  // no series before the first sample
  };
  // Earlier tests' requests were sampled too: wait for their replays first.
  server_->registry().Find("rf_digits")->drift->WaitIdle();
  const Scrape before(HttpGet(server_->metrics_port(), "/metrics").body);
  const Tensor x = Load("digits_test_x.npy");
  grpc::ClientContext ctx;
  v1::PredictResponse resp;
  auto stub = v1::InferenceService::NewStub(channel_);
  ASSERT_TRUE(stub->Predict(&ctx, Request("rf_digits", x, 8), &resp).ok());
  server_->registry().Find("rf_digits")->drift->WaitIdle();
  const Scrape after(HttpGet(server_->metrics_port(), "/metrics").body);
  EXPECT_EQ(value(after, "quantserve_drift_samples_total") -
                value(before, "quantserve_drift_samples_total"), 8);
  EXPECT_EQ(value(after, "quantserve_drift_errors_total"), 0);
  EXPECT_GE(value(after, "quantserve_drift_top1_agreements_total") -
                value(before, "quantserve_drift_top1_agreements_total"), 7);
}

}  // namespace
}  // namespace qs
