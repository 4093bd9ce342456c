#include "server/malformed_request.h"

#include <string>

namespace qs {
namespace {

using grpc::experimental::InterceptionHookPoints;

class MalformedRequestInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MalformedRequestInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method() ? info->method() : "") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    // gRPC sets the received message to null when it could not be parsed.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      malformed_ = true;
    }
    // The synchronous API answers such a call INTERNAL, the callback API
    // (Predict, ModelInfer) UNIMPLEMENTED with no message.
    const auto failed = [&] {
      const grpc::Status status = methods->GetSendStatus();
      return status.error_code() == grpc::StatusCode::INTERNAL ||
             (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
              status.error_message().empty());
    };
    if (malformed_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        failed()) {
      methods->ModifySendStatus(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "request: the message bytes are not a valid protobuf request for " + method_ +
              " (malformed, truncated, or a different message type)"));
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  bool malformed_ = false;
};

class MalformedRequestFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MalformedRequestInterceptor(info);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeMalformedRequestFactory() {
  return std::make_unique<MalformedRequestFactory>();
}

}  // namespace qs
