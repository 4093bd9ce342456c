#include "server/access_log.h"

#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

namespace qs {
namespace {

class AccessLogInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit AccessLogInterceptor(grpc::experimental::ServerRpcInfo* info)
      : info_(info), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
              .count();
      auto* ctx = info_->server_context();
      spdlog::info("access method={} peer={} code={} duration_ms={:.3f}{}{}", info_->method(),
                   ctx ? ctx->peer() : std::string("?"), static_cast<int>(status.error_code()), ms,
                   status.ok() ? "" : " error=",
                   status.ok() ? std::string() : status.error_message());
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  std::chrono::steady_clock::time_point start_;
};

class AccessLogFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new AccessLogInterceptor(info);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAccessLogFactory() {
  return std::make_unique<AccessLogFactory>();
}

}  // namespace qs
