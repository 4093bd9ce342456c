// The request rows of docs/RELIABILITY.md's hostile-input table, each sent
// to a real server over quantserve.v1 Predict and KServe ModelInfer: the
// code and the field named in the message, and the server still answering
// a good request afterwards.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;
using testing::HasSubstr;

struct Case {
  std::string name;
  std::vector<int64_t> shape;
  std::string datatype = "FP32";  // KServe spelling
  int64_t raw_bytes = -1;         // >= 0: raw contents of this many zero bytes
  std::vector<float> floats;      // typed contents (with raw_bytes < 0, or both)
  grpc::StatusCode code;
  std::string message;            // substring of the answer
  std::string input_name = "input";
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> Cases() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  return {
      {"zero-size batch", {0, 1, 28, 28}, "FP32", 0, {}, grpc::StatusCode::OK, ""},
      {"wrong dtype", {1, 1, 28, 28}, "INT64", 8 * 784, {}, grpc::StatusCode::INVALID_ARGUMENT,
       "datatype"},
      {"wrong rank", {1, 28, 28}, "FP32", 4 * 784, {}, grpc::StatusCode::INVALID_ARGUMENT,
       "[1,28,28]"},
      {"negative dim", {-1, 1, 28, 28}, "FP32", 0, {}, grpc::StatusCode::INVALID_ARGUMENT,
       "negative dimension -1"},
      {"huge dims", {int64_t{1} << 40, 1, 28, 28}, "FP32", 0, {},
       grpc::StatusCode::RESOURCE_EXHAUSTED, "elements per tensor"},
      {"too many rows", {300, 1, 28, 28}, "FP32", 4 * 784 * 300, {},
       grpc::StatusCode::RESOURCE_EXHAUSTED, "256"},
      {"raw size mismatch", {1, 1, 28, 28}, "FP32", 100, {}, grpc::StatusCode::INVALID_ARGUMENT,
       "100 bytes"},
      {"NaN", {1, 1, 28, 28}, "FP32", -1, std::vector<float>(784, nan),
       grpc::StatusCode::INVALID_ARGUMENT, "nan"},
      {"Inf", {1, 1, 28, 28}, "FP32", -1, std::vector<float>(784, inf),
       grpc::StatusCode::INVALID_ARGUMENT, "inf"},
      {"too few values", {1, 1, 28, 28}, "FP32", -1, std::vector<float>(10, 0.f),
       grpc::StatusCode::INVALID_ARGUMENT, "10 values"},
      {"unknown input", {1, 1, 28, 28}, "FP32", 4 * 784, {}, grpc::StatusCode::INVALID_ARGUMENT,
       "'nope'", "nope"},
  };
}

class HostileRequestTest : public testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    ServerConfig config;
    config.server.grpc_address = "127.0.0.1:0";
    config.server.metrics_address = "";
    config.server.max_batch_rows = 256;
    ModelConfig model;
    model.name = "m";
    model.path = QS_SOURCE_DIR "/models/fmnist_cnn.onnx";
    model.default_variant = "fp32";
    model.variants.push_back(VariantConfig{"fp32"});
    model.batching.max_batch_size = 8;
    config.models = {model};
    auto server = QuantServer::Start(config);
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

  static grpc::Status Predict(const Case& c) {
    v1::PredictRequest req;
    req.set_model("m");
    v1::Tensor* t = req.add_inputs();
    t->set_name(c.input_name);
    t->set_datatype(c.datatype == "INT64" ? v1::INT64 : v1::FP32);
    for (int64_t d : c.shape) t->add_shape(d);
    if (c.raw_bytes >= 0) t->set_raw_data(std::string(c.raw_bytes, '\0'));
    t->mutable_float_data()->Add(c.floats.begin(), c.floats.end());
    grpc::ClientContext ctx;
    v1::PredictResponse resp;
    return v1::InferenceService::NewStub(channel_)->Predict(&ctx, req, &resp);
  }
  static grpc::Status Infer(const Case& c) {
    inference::ModelInferRequest req;
    req.set_model_name("m");
    auto* in = req.add_inputs();
    in->set_name(c.input_name);
    in->set_datatype(c.datatype);
    for (int64_t d : c.shape) in->add_shape(d);
    if (c.raw_bytes >= 0) {
      req.add_raw_input_contents(std::string(c.raw_bytes, '\0'));
    } else {
      in->mutable_contents()->mutable_fp32_contents()->Add(c.floats.begin(), c.floats.end());
    }
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    return inference::GRPCInferenceService::NewStub(channel_)->ModelInfer(&ctx, req, &resp);
  }
  static bool GoodRequestWorks() {
    Case good{"good", {1, 1, 28, 28}, "FP32", 4 * 784, {}, grpc::StatusCode::OK, ""};
    return Predict(good).ok() && Infer(good).ok();
  }

  static QuantServer* server_;
  static std::shared_ptr<grpc::Channel> channel_;
};

QuantServer* HostileRequestTest::server_ = nullptr;
std::shared_ptr<grpc::Channel> HostileRequestTest::channel_;

TEST_P(HostileRequestTest, PredictAnswersWithTheExpectedCode) {
  const Case& c = GetParam();
  grpc::Status s = Predict(c);
  EXPECT_EQ(s.error_code(), c.code) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  EXPECT_TRUE(GoodRequestWorks());
}

TEST_P(HostileRequestTest, ModelInferAnswersWithTheExpectedCode) {
  const Case& c = GetParam();
  grpc::Status s = Infer(c);
  EXPECT_EQ(s.error_code(), c.code) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  EXPECT_TRUE(GoodRequestWorks());
}

INSTANTIATE_TEST_SUITE_P(Table, HostileRequestTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<Case>& info) {
                           std::string name;
                           for (char ch : info.param.name) name += std::isalnum(ch) ? ch : '_';
                           return name;
                         });

}  // namespace
}  // namespace qs
