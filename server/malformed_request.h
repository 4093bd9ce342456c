// gRPC answers a request whose bytes do not parse as the method's protobuf
// message with INTERNAL and no message, which reads like a server bug. This
// interceptor turns exactly that case — the request message failed to
// deserialize — into INVALID_ARGUMENT naming the expected message type.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

namespace qs {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeMalformedRequestFactory();

}  // namespace qs
