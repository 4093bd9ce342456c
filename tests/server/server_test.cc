// The real server over real gRPC on a free port: Predict on the bundled
// model, metadata, health, and the error statuses clients rely on.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include <grpcpp/generic/generic_stub.h>

#include "engine/data/npy.h"
#include "health.grpc.pb.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using testing::HasSubstr;

const std::string kModels = QS_SOURCE_DIR "/models";

ServerConfig TestConfig() {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "127.0.0.1:0";
  ModelConfig model;
  model.name = "fmnist_cnn";
  model.path = kModels + "/fmnist_cnn.onnx";
  model.default_variant = "fp32";
  model.variants.push_back(VariantConfig{"fp32"});
  model.batching.max_batch_size = 8;
  model.batching.max_queue_delay_us = 2000;
  config.models.push_back(model);
  return config;
}

class ServerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = QuantServer::Start(TestConfig());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    // Health says NOT_SERVING until the models are built.
    HealthCheckResponse health;
    grpc::ClientContext ctx;
    auto stub = grpc::health::v1::Health::NewStub(Channel());
    ASSERT_TRUE(stub->Check(&ctx, HealthCheckRequest(), &health).ok());
    EXPECT_EQ(health.status(), HealthCheckResponse::NOT_SERVING);
    ASSERT_TRUE(server_->LoadModels().ok());
  }
  static void TearDownTestSuite() {
    server_->Shutdown(std::chrono::milliseconds(100));
    delete server_;
    channel_.reset();
  }
  static std::shared_ptr<grpc::Channel> Channel() { return channel_; }
  std::unique_ptr<v1::InferenceService::Stub> Stub() {
    return v1::InferenceService::NewStub(Channel());
  }
  static v1::PredictRequest ImageRequest(int batch) {
    auto input = ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
    v1::PredictRequest req;
    req.set_model("fmnist_cnn");
    v1::Tensor* t = req.add_inputs();
    t->set_name("input");
    t->set_datatype(v1::FP32);
    for (int64_t d : {int64_t{batch}, int64_t{1}, int64_t{28}, int64_t{28}}) t->add_shape(d);
    t->mutable_float_data()->Add(input->data<float>(), input->data<float>() + batch * 784);
    return req;
  }
  grpc::Status Predict(const v1::PredictRequest& req, v1::PredictResponse* resp) {
    grpc::ClientContext ctx;
    return Stub()->Predict(&ctx, req, resp);
  }

  static QuantServer* server_;
  static std::shared_ptr<grpc::Channel> channel_;
};

QuantServer* ServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel> ServerTest::channel_;

TEST_F(ServerTest, HealthIsServingAfterLoad) {
  HealthCheckResponse health;
  grpc::ClientContext ctx;
  auto stub = grpc::health::v1::Health::NewStub(Channel());
  ASSERT_TRUE(stub->Check(&ctx, HealthCheckRequest(), &health).ok());
  EXPECT_EQ(health.status(), HealthCheckResponse::SERVING);
}

TEST_F(ServerTest, PredictReturnsPyTorchLogitsAndTopK) {
  auto expected = ReadNpy(kModels + "/fmnist_cnn_first16_logits.npy");
  v1::PredictRequest req = ImageRequest(4);
  req.set_top_k(3);
  req.set_request_id("abc");
  v1::PredictResponse resp;
  ASSERT_TRUE(Predict(req, &resp).ok());
  EXPECT_EQ(resp.variant(), "fp32");
  EXPECT_EQ(resp.request_id(), "abc");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "logits");
  ASSERT_EQ(resp.outputs(0).float_data_size(), 40);
  for (int i = 0; i < 40; ++i) {
    EXPECT_NEAR(resp.outputs(0).float_data(i), expected->data<float>()[i], 1e-3);
  }
  ASSERT_EQ(resp.top_k_size(), 4);
  EXPECT_EQ(resp.top_k(0).indices_size(), 3);
  EXPECT_EQ(resp.top_k(0).indices(0), 9);  // the first test image is an ankle boot
}

TEST_F(ServerTest, RawBytesInAndOut) {
  v1::PredictRequest req = ImageRequest(1);
  v1::Tensor* t = req.mutable_inputs(0);
  std::string raw(reinterpret_cast<const char*>(t->float_data().data()), 784 * 4);
  t->clear_float_data();
  t->set_raw_data(raw);
  req.set_raw_output(true);
  v1::PredictResponse resp;
  ASSERT_TRUE(Predict(req, &resp).ok());
  EXPECT_EQ(resp.outputs(0).raw_data().size(), 40u);
}

TEST_F(ServerTest, MetadataDescribesModelAndVariants) {
  v1::GetModelMetadataRequest req;
  req.set_model("fmnist_cnn");
  v1::ModelMetadata meta;
  grpc::ClientContext ctx;
  ASSERT_TRUE(Stub()->GetModelMetadata(&ctx, req, &meta).ok());
  EXPECT_EQ(meta.default_variant(), "fp32");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_THAT(meta.inputs(0).shape(), testing::ElementsAre(-1, 1, 28, 28));
  ASSERT_EQ(meta.variants_size(), 1);
  EXPECT_EQ(meta.variants(0).weight_bits(), 32);
  EXPECT_GT(meta.variants(0).weight_bytes(), 400000);

  v1::ListModelsResponse list;
  grpc::ClientContext ctx2;
  ASSERT_TRUE(Stub()->ListModels(&ctx2, v1::ListModelsRequest(), &list).ok());
  ASSERT_EQ(list.models_size(), 1);
}

// Bytes that are not the method's protobuf message, sent with a generic stub.
grpc::Status SendRawBytes(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                          const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = s;
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

TEST_F(ServerTest, MalformedProtobufIsInvalidArgumentNotInternal) {
  for (const std::string method : {"/quantserve.v1.InferenceService/Predict",
                                   "/inference.GRPCInferenceService/ModelInfer",
                                   "/grpc.health.v1.Health/Check"}) {
    for (const std::string bytes : {std::string("\xff\xff\xff\x07garbage"),
                                    std::string("\x0a\x05fmn"),  // truncated string
                                    std::string("\x1a\xff\xff\xff\xff\x0f")}) {
      grpc::Status s = SendRawBytes(Channel(), method, bytes);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
      // (gRPC's own health service words it "could not parse request".)
      if (method.find("health") != std::string::npos) continue;
      EXPECT_THAT(s.error_message(), testing::HasSubstr("request: the message bytes are not a "
                                                        "valid protobuf request for " + method));
    }
  }
  // The server is fine afterwards.
  EXPECT_EQ(SendRawBytes(Channel(), "/quantserve.v1.InferenceService/ListModels", "").error_code(),
            grpc::StatusCode::OK);
}

TEST_F(ServerTest, ErrorsNameTheField) {
  v1::PredictResponse resp;
  v1::PredictRequest req = ImageRequest(1);
  req.set_model("nope");
  grpc::Status s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("'nope'"));

  req = ImageRequest(1);
  req.set_variant("int3");
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("variants: 'fp32'"));

  req = ImageRequest(1);
  req.mutable_inputs(0)->set_shape(2, 27);
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("inputs[0] ('input')"));

  req = ImageRequest(1);
  req.mutable_inputs(0)->set_raw_data("1234");
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("both as raw_data and in typed fields"));

  req = ImageRequest(1);
  req.mutable_inputs(0)->clear_float_data();
  req.mutable_inputs(0)->set_raw_data("1234");
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("raw_data: 4 bytes"));

  req = ImageRequest(1);
  req.mutable_inputs(0)->set_datatype(v1::INT64);
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  req = ImageRequest(1);
  req.mutable_inputs(0)->set_name("image");
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("'image' is not an input"));

  req = ImageRequest(1);
  req.add_output_names("probabilities");
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("output_names[0]"));

  // The server keeps serving after every bad request.
  ASSERT_TRUE(Predict(ImageRequest(2), &resp).ok());
}

TEST_F(ServerTest, ConcurrentClientsGetTheInProcessAnswers) {
  auto expected = ReadNpy(kModels + "/fmnist_cnn_first16_logits.npy");
  constexpr int kClients = 12;
  std::vector<std::thread> clients;
  std::atomic<int> bad{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::InferenceService::NewStub(Channel());
      for (int round = 0; round < 5; ++round) {
        v1::PredictRequest req = ImageRequest(16);
        // Each client sends one image (a different one per client).
        v1::Tensor* t = req.mutable_inputs(0);
        std::vector<float> img(t->float_data().begin() + c * 784, t->float_data().begin() + (c + 1) * 784);
        t->clear_float_data();
        t->mutable_float_data()->Add(img.begin(), img.end());
        t->set_shape(0, 1);
        v1::PredictResponse resp;
        grpc::ClientContext ctx;
        if (!stub->Predict(&ctx, req, &resp).ok() || resp.outputs(0).float_data_size() != 10) {
          ++bad;
          continue;
        }
        for (int k = 0; k < 10; ++k) {
          if (std::fabs(resp.outputs(0).float_data(k) - expected->data<float>()[c * 10 + k]) > 1e-3) ++bad;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(bad, 0);
}

TEST_F(ServerTest, ExpiredDeadlineIsDeadlineExceeded) {
  v1::PredictResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(1));
  grpc::Status s = Stub()->Predict(&ctx, ImageRequest(1), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // And the server still serves.
  ASSERT_TRUE(Predict(ImageRequest(1), &resp).ok());
}

}  // namespace
}  // namespace qs
