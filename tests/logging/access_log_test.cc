// server.access_log: one line per call with method, peer, gRPC code and
// duration; off by default.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;

TEST(AccessLogTest, LogsOneLinePerCallWithItsCode) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);

  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "127.0.0.1:0";
  config.server.access_log = true;
  ModelConfig model;
  model.name = "fmnist_cnn";
  model.path = QS_SOURCE_DIR "/models/fmnist_cnn.onnx";
  model.default_variant = "fp32";
  model.variants.push_back(VariantConfig{"fp32"});
  config.models.push_back(model);
  auto server = QuantServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->LoadModels().ok());
  auto stub = v1::InferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  v1::PredictRequest req;
  req.set_model("nope");
  v1::PredictResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(stub->Predict(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ListModelsResponse list;
  grpc::ClientContext ctx2;
  EXPECT_TRUE(stub->ListModels(&ctx2, v1::ListModelsRequest(), &list).ok());
  (*server)->Shutdown(std::chrono::milliseconds(100));
  spdlog::default_logger()->sinks().pop_back();

  const std::string text = log.str();
  EXPECT_THAT(text, testing::HasSubstr("access method=/quantserve.v1.InferenceService/Predict"));
  EXPECT_THAT(text, testing::HasSubstr("code=5"));  // NOT_FOUND
  EXPECT_THAT(text, testing::HasSubstr("access method=/quantserve.v1.InferenceService/ListModels"));
  EXPECT_THAT(text, testing::HasSubstr("code=0"));
}

}  // namespace
}  // namespace qs
