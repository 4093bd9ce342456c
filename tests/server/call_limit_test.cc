// server.max_concurrent_calls: calls beyond the bound get RESOURCE_EXHAUSTED
// at once (no thread is created for them), calls within it are served, and
// the server keeps serving after the burst.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <memory>
#include <vector>

#include "engine/data/npy.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;

ServerConfig Config(int max_calls) {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "";
  config.server.shutdown_grace_ms = 1000;
  config.server.max_concurrent_calls = max_calls;
  ModelConfig model;
  model.name = "m";
  model.path = QS_SOURCE_DIR "/models/fmnist_cnn.onnx";
  model.default_variant = "fp32";
  model.variants.push_back(VariantConfig{"fp32"});
  // Batches wait up to 300 ms to fill, so a burst of single-row calls all
  // hold their threads at the same time.
  model.batching.max_batch_size = 256;
  model.batching.max_queue_delay_us = 300000;
  model.batching.max_queue_rows = 1024;
  config.models = {model};
  return config;
}

v1::PredictRequest OneImage() {
  static const Tensor images =
      *ReadNpy(QS_SOURCE_DIR "/models/fmnist_cnn_first16_input.npy");
  v1::PredictRequest req;
  req.set_model("m");
  v1::Tensor* t = req.add_inputs();
  t->set_name("input");
  t->set_datatype(v1::FP32);
  for (int64_t d : {1, 1, 28, 28}) t->add_shape(d);
  t->mutable_float_data()->Add(images.data<float>(), images.data<float>() + 784);
  return req;
}

// Sends `calls` Predict calls at once and counts the status codes.
std::map<grpc::StatusCode, int> Burst(v1::InferenceService::Stub& stub, int calls) {
  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext ctx;
    v1::PredictResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PredictResponse>> reader;
  };
  std::vector<std::unique_ptr<Call>> all;
  const v1::PredictRequest req = OneImage();
  for (int i = 0; i < calls; ++i) {
    auto c = std::make_unique<Call>();
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    c->reader = stub.AsyncPredict(&c->ctx, req, &cq);
    c->reader->Finish(&c->response, &c->status, c.get());
    all.push_back(std::move(c));
  }
  std::map<grpc::StatusCode, int> codes;
  for (int i = 0; i < calls; ++i) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    auto* c = static_cast<Call*>(tag);
    ++codes[c->status.error_code()];
    if (c->status.ok()) {
      EXPECT_EQ(c->response.outputs_size(), 1);
    } else if (codes[c->status.error_code()] == 1) {
      std::cout << "first " << c->status.error_code() << ": '" << c->status.error_message()
                << "'\n";
    }
  }
  cq.Shutdown();
  return codes;
}

TEST(CallLimitTest, CallsBeyondTheBoundAreRefusedAndTheServerKeepsServing) {
  auto server = QuantServer::Start(Config(16));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->LoadModels().ok());
  EXPECT_EQ((*server)->max_concurrent_calls(), 16);
  auto stub = v1::InferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials()));

  const auto codes = Burst(*stub, 200);
  EXPECT_GT(codes.count(grpc::StatusCode::OK) ? codes.at(grpc::StatusCode::OK) : 0, 0);
  EXPECT_GT(codes.count(grpc::StatusCode::RESOURCE_EXHAUSTED)
                ? codes.at(grpc::StatusCode::RESOURCE_EXHAUSTED)
                : 0,
            0);
  for (const auto& [code, n] : codes) {
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << "unexpected status code " << code << " for " << n << " calls";
  }

  // After the burst, a call is served again.
  grpc::ClientContext ctx;
  v1::PredictResponse resp;
  EXPECT_TRUE(stub->Predict(&ctx, OneImage(), &resp).ok());
  (*server)->Shutdown(std::chrono::milliseconds(1000));
}

TEST(CallLimitTest, TheAutomaticBoundAdmitsAFullBatchingQueue) {
  ServerConfig config = Config(0);
  // 64 + 4 per core, plus the batched model's whole queue.
  EXPECT_EQ(EffectiveMaxConcurrentCalls(config, 2), 64 + 8 + 1024);
  config.models[0].batching.max_batch_size = 1;  // unbatched: queued requests wait for a worker only
  EXPECT_EQ(EffectiveMaxConcurrentCalls(config, 2), 64 + 8);
  config.server.max_concurrent_calls = 500;
  EXPECT_EQ(EffectiveMaxConcurrentCalls(config, 2), 500);

  // A burst the size of the queue is served entirely.
  auto server = QuantServer::Start(Config(0));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->LoadModels().ok());
  auto stub = v1::InferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  const auto codes = Burst(*stub, 200);
  EXPECT_EQ(codes.size(), 1u);
  EXPECT_EQ(codes.count(grpc::StatusCode::OK) ? codes.at(grpc::StatusCode::OK) : 0, 200);
  (*server)->Shutdown(std::chrono::milliseconds(1000));
}

}  // namespace
}  // namespace qs
