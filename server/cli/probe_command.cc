// quantserve probe --address HOST:PORT [--timeout-ms N]
// Exit 0 when the server is ready (every model loaded, not shutting down),
// 1 otherwise: the Docker HEALTHCHECK, without a separate probe binary.
#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "server/cli/commands.h"

namespace qs::cli {

int Probe(const ProbeArgs& args) {
  auto channel = grpc::CreateChannel(args.address, grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(args.timeout_ms));
  inference::ServerReadyResponse resp;
  grpc::Status status = stub->ServerReady(&ctx, inference::ServerReadyRequest(), &resp);
  if (!status.ok()) {
    std::fprintf(stderr, "quantserve probe: %s: %s\n", args.address.c_str(),
                 status.error_message().c_str());
    return 1;
  }
  std::printf("%s\n", resp.ready() ? "ready" : "not ready");
  return resp.ready() ? 0 : 1;
}

}  // namespace qs::cli
