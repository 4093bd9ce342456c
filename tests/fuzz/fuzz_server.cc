#include "fuzz_server.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace qs::fuzz {
namespace {

const char* kConfig = R"(
server:
  grpc_address: 127.0.0.1:0
  intra_op_threads: 1
  max_batch_rows: 8
  max_tensor_elements: 6272
models:
  - name: fmnist
    path: models/fmnist_cnn.onnx
    calibration: {format: npy, inputs: models/fmnist_cnn_first16_input.npy, scale: 1.0}
    variants:
      - name: fp32
      - name: w8a8
        weights: {bits: 8}
        activations: {bits: 8}
    drift: {sample_rate: 1.0, mode: mirror, queue_capacity: 4, feedback_capacity: 64}
  - name: fmnist_b
    path: models/fmnist_cnn.onnx
    batching: {max_batch_size: 4, max_queue_delay_us: 0, max_queue_rows: 16}
)";

FuzzServer* Start() {
  // Quiet: protobuf logs every string field with invalid UTF-8 it refuses
  // to parse, and drift replays of refused shapes warn; both would flood the
  // fuzzer's output and slow it down.
  google::protobuf::SetLogHandler(nullptr);
  spdlog::set_level(spdlog::level::err);
  auto* s = new FuzzServer;
  absl::StatusOr<ServerConfig> config = ParseServerConfig(kConfig, "fuzz_server", QS_SOURCE_DIR);
  if (!config.ok()) Fail("fuzz server config: %s", config.status().ToString().c_str());
  s->config = *config;
  s->config.server.metrics_address = "";  // no Prometheus HTTP server
  absl::StatusOr<std::unique_ptr<QuantServer>> server = QuantServer::Start(s->config);
  if (!server.ok()) Fail("QuantServer::Start: %s", server.status().ToString().c_str());
  s->server = server->release();
  absl::Status loaded = s->server->LoadModels();
  if (!loaded.ok()) Fail("LoadModels: %s", loaded.ToString().c_str());
  // The same limits QuantServer::Start gives its own services.
  s->limits.max_elements = s->config.server.max_tensor_elements;
  s->limits.max_batch_rows = s->config.server.max_batch_rows;
  s->limits.reject_nonfinite = s->config.server.nan_policy == NanPolicy::kReject;
  s->predict = new InferenceServiceImpl(s->server->registry(), s->limits, &s->server->metrics());
  s->kserve = new KServeServiceImpl(s->server->registry(), s->limits, &s->server->metrics());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(s->server->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  s->predict_stub = quantserve::v1::InferenceService::NewStub(channel);
  s->kserve_stub = inference::GRPCInferenceService::NewStub(channel);
  return s;
}

}  // namespace

FuzzServer& GetServer() {
  static FuzzServer* server = Start();
  return *server;
}

void WaitIdle() {
  for (const auto& model : GetServer().server->registry().List()) {
    if (model->drift != nullptr) model->drift->WaitIdle();
  }
}

}  // namespace qs::fuzz
