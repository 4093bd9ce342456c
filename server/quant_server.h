// The running server: gRPC services (quantserve.v1, grpc.health.v1,
// reflection) over a ModelRegistry. Start() binds the port and answers
// health checks with NOT_SERVING while LoadModels() quantizes and compiles;
// SERVING once every model and variant is ready; NOT_SERVING again as soon
// as Shutdown() begins. Prometheus metrics are served on their own port
// (config.server.metrics_address, see docs/METRICS.md) from Start() on.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "config/server_config.h"
#include "server/inference_service.h"
#include "server/kserve_service.h"
#include "server/metrics.h"
#include "server/model_registry.h"

namespace qs {

class QuantServer {
 public:
  static absl::StatusOr<std::unique_ptr<QuantServer>> Start(const ServerConfig& config);
  ~QuantServer();

  int grpc_port() const { return port_; }
  // The bound on calls in progress (server.max_concurrent_calls resolved).
  int max_concurrent_calls() const { return max_concurrent_calls_; }
  // The bound Prometheus port (metrics_address with port 0 picks a free
  // one); 0 when metrics_address is empty.
  int metrics_port() const { return metrics_->port(); }
  const ServerMetrics& metrics() const { return *metrics_; }
  // Builds every configured model (all variants) and publishes it.
  absl::Status LoadModels();
  // Zero-downtime reload: models of `config` whose settings or files
  // (model, datasets) changed since they were built are rebuilt — in the
  // calling thread, while the old ones keep serving — new ones are built,
  // removed ones dropped, and the whole set is swapped in at once. If any
  // model fails to build, nothing changes and the error (naming the model)
  // is returned. `config.server` cannot change without a restart: a
  // difference is logged and ignored. One reload at a time.
  absl::Status Reload(const ServerConfig& config);
  // A reload that failed before Reload() could run (the config file did not
  // read or validate): counted like a rejected one.
  void RecordFailedReload() { metrics_->ObserveLoad(false, /*reload=*/true); }
  // Stops accepting calls; calls in flight finish until `grace` runs out.
  void Shutdown(std::chrono::milliseconds grace);
  void Wait();
  const ModelRegistry& registry() const { return registry_; }

 private:
  explicit QuantServer(ServerConfig config);
  // Builds one model: variants, batchers, drift monitor, Feedback store.
  absl::StatusOr<std::shared_ptr<ServedModel>> BuildServed(const ModelConfig& mc);
  // Drift monitor, Feedback store and their metrics for one loaded model.
  absl::Status SetUpMonitoring(const ModelConfig& mc, ServedModel& served);

  ServerConfig config_;
  // Before registry_ and the services: batchers and handlers report into it.
  std::unique_ptr<ServerMetrics> metrics_;
  ModelRegistry registry_;
  std::unique_ptr<InferenceServiceImpl> service_;
  std::unique_ptr<KServeServiceImpl> kserve_service_;  // inference.GRPCInferenceService
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  int max_concurrent_calls_ = 0;
  std::mutex reload_mu_;  // one LoadModels/Reload at a time; guards config_.models
  std::mutex shutdown_mu_;
  bool shut_down_ = false;  // guarded by shutdown_mu_
};

}  // namespace qs
