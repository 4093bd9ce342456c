// `quantserve probe` against a real server: not ready while models load,
// ready after, failing when nothing listens (the Docker HEALTHCHECK).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>

#include "server/quant_server.h"

namespace qs {
namespace {

int Probe(int port) {
  const std::string cmd = std::string(QUANTSERVE_BIN) + " probe --address 127.0.0.1:" +
                          std::to_string(port) + " --timeout-ms 2000 >/dev/null 2>&1";
  return WEXITSTATUS(std::system(cmd.c_str()));
}

TEST(ProbeTest, ReadyOnlyAfterModelsLoad) {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "127.0.0.1:0";
  ModelConfig model;
  model.name = "fmnist_cnn";
  model.path = QS_SOURCE_DIR "/models/fmnist_cnn.onnx";
  model.default_variant = "fp32";
  model.variants.push_back(VariantConfig{"fp32"});
  config.models.push_back(model);
  auto server = QuantServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->grpc_port();
  EXPECT_EQ(Probe(port), 1);  // listening, models not loaded yet
  ASSERT_TRUE((*server)->LoadModels().ok());
  EXPECT_EQ(Probe(port), 0);
  (*server)->Shutdown(std::chrono::milliseconds(100));
  EXPECT_EQ(Probe(port), 1);  // nothing listens any more
}

}  // namespace
}  // namespace qs
