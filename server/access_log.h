// An opt-in access log (server.access_log): one structured line per call
// with the method, peer, gRPC code and duration, written as the status is
// sent. A gRPC server interceptor, so every service is covered the same way.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

namespace qs {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAccessLogFactory();

}  // namespace qs
