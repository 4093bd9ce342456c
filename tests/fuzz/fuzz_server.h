// The server the request fuzzers call into: the real QuantServer, started
// once on a loopback port with the bundled fp32 model (models/fmnist_cnn.onnx)
// and small request limits, its models loaded. The inference calls (Predict,
// ModelInfer: gRPC's callback API) go through a loopback channel to it, so
// the whole call path is fuzzed; the synchronous metadata handlers are
// called directly with a default-constructed grpc::ServerContext.
//
// Two models over the same file, so both request paths are covered:
//   fmnist       variants fp32 (default) and w8a8 (int8, calibrated on the
//                16 bundled sample images); unbatched; mirror drift on every
//                request and Feedback on.
//   fmnist_b     fp32 only, dynamic batching (max 4 rows, no queue delay).
// Limits: max_batch_rows 8, max_tensor_elements 8 * 784.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/status.h>

#include <memory>

#include <cstdio>
#include <string>

#include "config/server_config.h"
#include "fuzz_util.h"
#include "server/inference_service.h"
#include "server/kserve_service.h"
#include "server/quant_server.h"

namespace qs::fuzz {

struct FuzzServer {
  QuantServer* server = nullptr;  // never deleted: lives for the process
  ServerConfig config;
  DecodeLimits limits;
  InferenceServiceImpl* predict = nullptr;  // for its synchronous methods
  KServeServiceImpl* kserve = nullptr;      // likewise
  // Over a loopback channel to `server`.
  std::unique_ptr<quantserve::v1::InferenceService::Stub> predict_stub;
  std::unique_ptr<inference::GRPCInferenceService::Stub> kserve_stub;
};

// Starts the server on the first call (from LLVMFuzzerInitialize).
FuzzServer& GetServer();

// Waits until every drift monitor has replayed what was queued. Called
// after each input: a crash in a replay is then blamed on the input that
// caused it, and no server thread is running oneDNN code when the process
// exits (exit() destroys oneDNN's lazily created JIT kernels, and a replay
// still running then jumps into freed code). Batcher workers need no wait:
// a call's answer is sent only after its batch ran.
void WaitIdle();

// A gRPC error from a handler: as CheckError(absl::Status).
inline void CheckGrpcError(const grpc::Status& status, const char* what) {
  if (status.ok()) return;
  if (status.error_message().empty()) {
    Fail("%s: gRPC error %d with an empty message", what,
         static_cast<int>(status.error_code()));
  }
  if (status.error_code() == grpc::StatusCode::INTERNAL ||
      status.error_code() == grpc::StatusCode::UNKNOWN) {
    Fail("%s: gRPC %s for bad input: %s", what,
         status.error_code() == grpc::StatusCode::INTERNAL ? "INTERNAL" : "UNKNOWN",
         status.error_message().c_str());
  }
}

}  // namespace qs::fuzz
