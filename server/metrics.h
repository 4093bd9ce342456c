// Prometheus metrics of the server (names in server/metric_names.h, meaning
// in docs/METRICS.md). ServerMetrics owns the registry and, once Expose() is
// called, the HTTP endpoint serving it. The child metrics of a model variant
// are created once, when the model is published (VariantMetrics); request
// handlers and batcher workers then only update atomics — no lookups by
// label and no locks on the request path.
#pragma once

#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model_builder.h"
#include "server/batcher.h"

namespace prometheus {
class Exposer;
}

namespace qs {

class ProcessCollector;

// gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED).
inline constexpr int kGrpcCodeCount = 17;
// "OK", "INVALID_ARGUMENT", ... ("UNKNOWN" for values out of range).
const char* GrpcCodeName(grpc::StatusCode code);

// The children of one (model, variant). Every member is internally
// synchronized, so requests share one VariantMetrics through the const
// ServedModel. On the "unknown" fallback only `requests` is set.
struct VariantMetrics {
  std::array<prometheus::Counter*, kGrpcCodeCount> requests{};  // by code
  prometheus::Histogram* request_duration = nullptr;
  prometheus::Gauge* inflight = nullptr;
  prometheus::Histogram* queue_duration = nullptr;
  prometheus::Histogram* compute_duration = nullptr;
  prometheus::Histogram* batch_size = nullptr;
  // Live drift of this variant against the reference (null unless the
  // model's drift monitoring is on and this is not the reference variant).
  prometheus::Counter* drift_samples = nullptr;
  prometheus::Counter* drift_agreements = nullptr;
  prometheus::Histogram* drift_kl = nullptr;
  prometheus::Histogram* drift_relative_error = nullptr;
  prometheus::Counter* drift_errors = nullptr;
  // Requests to this variant sampled for drift (null unless drift is on).
  prometheus::Counter* drift_enqueued = nullptr;
  prometheus::Counter* drift_dropped = nullptr;
  // Labelled samples from Feedback (null unless Feedback is on).
  prometheus::Counter* feedback_samples = nullptr;
  prometheus::Counter* feedback_correct = nullptr;
  // Keeps the metric families alive while a ServedModel points into them.
  std::shared_ptr<prometheus::Registry> registry;

  // One executed run: a batch from the Batcher, or an unbatched request.
  void ObserveBatch(const BatchEvent& event);
};

// Which monitoring children ForModel creates (series exist only where they
// can move).
struct MonitoringOptions {
  bool drift = false;
  int drift_reference = -1;  // variant index with no drift series of its own
  bool feedback = false;
};

// Per-model monitoring metrics; null members when that monitoring is off.
struct ModelMetrics {
  prometheus::Gauge* drift_queue_length = nullptr;
  prometheus::Counter* feedback_unmatched = nullptr;
  std::shared_ptr<prometheus::Registry> registry;
};

class ServerMetrics {
 public:
  ServerMetrics();
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // Serves the registry and the process metrics at http://`address`/metrics
  // ("host:port"; port 0 picks a free port, see port()). UNAVAILABLE when the
  // address cannot be bound.
  absl::Status Expose(const std::string& address);
  // The bound metrics port; 0 before Expose().
  int port() const { return port_; }

  // The children of every variant of `model`, in the order of its variants,
  // with the load-time gauges (weight bytes, build time, accuracy, accuracy
  // drop against the model's evaluated fp32 variant, top-1 agreement) set.
  // `monitoring` adds the drift and feedback children.
  std::vector<std::shared_ptr<VariantMetrics>> ForModel(const BuiltModel& model,
                                                        const MonitoringOptions& monitoring = {});
  std::shared_ptr<ModelMetrics> ForModelMonitoring(const std::string& model,
                                                   const MonitoringOptions& monitoring);
  // The outcome of loading the models at start-up (`reload` false) or of a
  // config reload (counted in quantserve_config_reloads_total).
  void ObserveLoad(bool success, bool reload);
  // Requests for a model or variant that is not served.
  VariantMetrics* unknown() const { return unknown_.get(); }

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessCollector> process_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Gauge>* inflight_;
  prometheus::Family<prometheus::Histogram>* queue_duration_;
  prometheus::Family<prometheus::Histogram>* compute_duration_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Gauge>* weight_bytes_;
  prometheus::Family<prometheus::Gauge>* build_seconds_;
  prometheus::Family<prometheus::Gauge>* accuracy_;
  prometheus::Family<prometheus::Gauge>* accuracy_drop_;
  prometheus::Family<prometheus::Gauge>* top1_agreement_;
  prometheus::Family<prometheus::Counter>* drift_samples_;
  prometheus::Family<prometheus::Counter>* drift_agreements_;
  prometheus::Family<prometheus::Histogram>* drift_kl_;
  prometheus::Family<prometheus::Histogram>* drift_relative_error_;
  prometheus::Family<prometheus::Counter>* drift_errors_;
  prometheus::Family<prometheus::Counter>* drift_enqueued_;
  prometheus::Family<prometheus::Counter>* drift_dropped_;
  prometheus::Family<prometheus::Gauge>* drift_queue_length_;
  prometheus::Family<prometheus::Counter>* feedback_samples_;
  prometheus::Family<prometheus::Counter>* feedback_correct_;
  prometheus::Family<prometheus::Counter>* feedback_unmatched_;
  prometheus::Counter* reloads_success_;
  prometheus::Counter* reloads_failure_;
  prometheus::Gauge* last_reload_successful_;
  prometheus::Gauge* last_reload_time_;
  std::shared_ptr<VariantMetrics> unknown_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;  // as given to Expose()
  int port_ = 0;
};

// Times one inference request in a service handler and counts its outcome
// against the variant that served it, or against the "unknown" fallback when
// the handler returns before resolving one. `metrics` may be null (no-op).
//   RequestMetrics m(metrics_);
//   return m.Finish(Handle(..., m));  // Handle calls m.Serving(variant)
class RequestMetrics {
 public:
  explicit RequestMetrics(const ServerMetrics* metrics)
      : fallback_(metrics ? metrics->unknown() : nullptr),
        start_(std::chrono::steady_clock::now()) {}
  RequestMetrics(const RequestMetrics&) = delete;
  RequestMetrics& operator=(const RequestMetrics&) = delete;

  // The request resolved to `variant` (may be null); counts it in flight.
  void Serving(std::shared_ptr<VariantMetrics> variant);
  // Counts the status code, observes the duration, ends in flight; returns
  // `status` unchanged.
  grpc::Status Finish(grpc::Status status);

 private:
  VariantMetrics* fallback_;
  // Owned: a config reload may drop the model's metrics while this request
  // is still finishing (found by ASan in ReloadTest).
  std::shared_ptr<VariantMetrics> variant_;
  bool resolved_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace qs
