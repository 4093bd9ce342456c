// server.max_connection_age_ms: the server closes old connections gracefully
// (the client's channel drops to IDLE) and the next call reconnects.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;

ServerConfig Config(int64_t age_ms) {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "";
  config.server.max_connection_age_ms = age_ms;
  config.server.shutdown_grace_ms = 100;
  ModelConfig model;
  model.name = "m";
  model.path = QS_SOURCE_DIR "/models/fmnist_cnn.onnx";
  model.default_variant = "fp32";
  model.variants.push_back(VariantConfig{"fp32"});
  config.models = {model};
  return config;
}

// The channel's state `wait` after a successful ListModels call.
grpc_connectivity_state StateAfterACall(int64_t age_ms, std::chrono::milliseconds wait) {
  auto server = QuantServer::Start(Config(age_ms));
  EXPECT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->LoadModels().ok());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::InferenceService::NewStub(channel);
  auto list = [&] {
    grpc::ClientContext ctx;
    v1::ListModelsResponse resp;
    return stub->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok();
  };
  EXPECT_TRUE(list());
  std::this_thread::sleep_for(wait);
  const grpc_connectivity_state state = channel->GetState(false);
  EXPECT_TRUE(list());  // reconnects transparently if it was closed
  (*server)->Shutdown(std::chrono::milliseconds(100));
  return state;
}

TEST(ConnectionAgeTest, OldConnectionsAreClosedAndClientsReconnect) {
  // gRPC jitters the age by ±10 % and the grace period follows it.
  EXPECT_NE(StateAfterACall(300, std::chrono::milliseconds(1500)), GRPC_CHANNEL_READY);
}

TEST(ConnectionAgeTest, ZeroKeepsConnectionsOpen) {
  EXPECT_EQ(StateAfterACall(0, std::chrono::milliseconds(1500)), GRPC_CHANNEL_READY);
}

}  // namespace
}  // namespace qs
