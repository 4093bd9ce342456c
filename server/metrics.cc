#include "server/metrics.h"

#include <netdb.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/metric_names.h"
#include "server/process_metrics.h"

namespace qs {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

// Indexed by grpc::StatusCode.
constexpr const char* kCodeNames[kGrpcCodeCount] = {
    "OK",                   // 0
    "CANCELLED",            // 1
    "UNKNOWN",              // 2
    "INVALID_ARGUMENT",     // 3
    "DEADLINE_EXCEEDED",    // 4
    "NOT_FOUND",            // 5
    "ALREADY_EXISTS",       // 6
    "PERMISSION_DENIED",    // 7
    "RESOURCE_EXHAUSTED",   // 8
    "FAILED_PRECONDITION",  // 9
    "ABORTED",              // 10
    "OUT_OF_RANGE",         // 11
    "UNIMPLEMENTED",        // 12
    "INTERNAL",             // 13
    "UNAVAILABLE",          // 14
    "DATA_LOSS",            // 15
    "UNAUTHENTICATED",      // 16
};

// 100 µs .. 10 s in 1-2.5-5 steps.
const Histogram::BucketBoundaries& SecondsBuckets() {
  static const Histogram::BucketBoundaries buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                      1,      2.5,     5,      10};
  return buckets;
}

// 1, 2, 4, ..., 4096 rows (the largest configurable max_batch_size).
const Histogram::BucketBoundaries& RowBuckets() {
  static const Histogram::BucketBoundaries buckets = [] {
    Histogram::BucketBoundaries b;
    for (double rows = 1; rows <= 4096; rows *= 2) b.push_back(rows);
    return b;
  }();
  return buckets;
}

// KL divergence in nats: 1e-5 (indistinguishable) .. 3 (unrelated).
const Histogram::BucketBoundaries& KlBuckets() {
  static const Histogram::BucketBoundaries buckets = {1e-5, 3e-5, 1e-4, 3e-4, 0.001, 0.003,
                                                      0.01, 0.03, 0.1,  0.3,  1,     3};
  return buckets;
}

// Relative L2 error of an output row: 0.1 % .. 200 %.
const Histogram::BucketBoundaries& RelativeErrorBuckets() {
  static const Histogram::BucketBoundaries buckets = {0.001, 0.003, 0.01, 0.02, 0.05, 0.1,
                                                      0.2,   0.3,   0.5,  1,    2};
  return buckets;
}

double Seconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) * 1e-6; }

template <typename Builder>
auto& Register(Builder builder, const char* name, const char* help,
               prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Register(registry);
}

// Counters for every code, so error rates exist (as 0) before the first error.
void AddRequestCounters(Family<Counter>& family, const Labels& labels, VariantMetrics& m) {
  for (int code = 0; code < kGrpcCodeCount; ++code) {
    Labels with_code = labels;
    with_code[metric::kCode] = kCodeNames[code];
    m.requests[code] = &family.Add(with_code);
  }
}

// Opens and at once closes a connection to the metrics listener on `address`
// ("host:port"; a wildcard host means this machine).
void Poke(const std::string& address, int port) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    timeval timeout{0, 100000};  // bounds connect()
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    const bool connected = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
    if (connected) break;
  }
  freeaddrinfo(found);
}

}  // namespace

const char* GrpcCodeName(grpc::StatusCode code) {
  const int i = static_cast<int>(code);
  return i >= 0 && i < kGrpcCodeCount ? kCodeNames[i] : "UNKNOWN";
}

void VariantMetrics::ObserveBatch(const BatchEvent& event) {
  if (queue_duration) queue_duration->Observe(Seconds(event.oldest_wait));
  if (compute_duration) compute_duration->Observe(Seconds(event.compute));
  if (batch_size) batch_size->Observe(static_cast<double>(event.rows));
}

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessCollector>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  prometheus::Registry& r = *registry_;
  requests_ = &Register(BuildCounter(), metric::kRequestsTotal, metric::kRequestsTotalHelp, r);
  request_duration_ =
      &Register(BuildHistogram(), metric::kRequestDuration, metric::kRequestDurationHelp, r);
  inflight_ = &Register(BuildGauge(), metric::kInflight, metric::kInflightHelp, r);
  queue_duration_ =
      &Register(BuildHistogram(), metric::kQueueDuration, metric::kQueueDurationHelp, r);
  compute_duration_ =
      &Register(BuildHistogram(), metric::kComputeDuration, metric::kComputeDurationHelp, r);
  batch_size_ = &Register(BuildHistogram(), metric::kBatchSize, metric::kBatchSizeHelp, r);
  weight_bytes_ = &Register(BuildGauge(), metric::kWeightBytes, metric::kWeightBytesHelp, r);
  build_seconds_ = &Register(BuildGauge(), metric::kBuildSeconds, metric::kBuildSecondsHelp, r);
  accuracy_ = &Register(BuildGauge(), metric::kAccuracy, metric::kAccuracyHelp, r);
  accuracy_drop_ = &Register(BuildGauge(), metric::kAccuracyDrop, metric::kAccuracyDropHelp, r);
  top1_agreement_ = &Register(BuildGauge(), metric::kTop1Agreement, metric::kTop1AgreementHelp, r);
  drift_samples_ = &Register(BuildCounter(), metric::kDriftSamples, metric::kDriftSamplesHelp, r);
  drift_agreements_ =
      &Register(BuildCounter(), metric::kDriftAgreements, metric::kDriftAgreementsHelp, r);
  drift_kl_ = &Register(BuildHistogram(), metric::kDriftKl, metric::kDriftKlHelp, r);
  drift_relative_error_ = &Register(BuildHistogram(), metric::kDriftRelativeError,
                                    metric::kDriftRelativeErrorHelp, r);
  drift_errors_ = &Register(BuildCounter(), metric::kDriftErrors, metric::kDriftErrorsHelp, r);
  drift_enqueued_ =
      &Register(BuildCounter(), metric::kDriftEnqueued, metric::kDriftEnqueuedHelp, r);
  drift_dropped_ = &Register(BuildCounter(), metric::kDriftDropped, metric::kDriftDroppedHelp, r);
  drift_queue_length_ =
      &Register(BuildGauge(), metric::kDriftQueueLength, metric::kDriftQueueLengthHelp, r);
  feedback_samples_ =
      &Register(BuildCounter(), metric::kFeedbackSamples, metric::kFeedbackSamplesHelp, r);
  feedback_correct_ =
      &Register(BuildCounter(), metric::kFeedbackCorrect, metric::kFeedbackCorrectHelp, r);
  feedback_unmatched_ =
      &Register(BuildCounter(), metric::kFeedbackUnmatched, metric::kFeedbackUnmatchedHelp, r);

  auto& reloads = Register(BuildCounter(), metric::kConfigReloads, metric::kConfigReloadsHelp, r);
  reloads_success_ = &reloads.Add({{metric::kResult, "success"}});
  reloads_failure_ = &reloads.Add({{metric::kResult, "failure"}});
  last_reload_successful_ = &Register(BuildGauge(), metric::kConfigLastReloadSuccessful,
                                      metric::kConfigLastReloadSuccessfulHelp, r)
                                 .Add({});
  last_reload_time_ = &Register(BuildGauge(), metric::kConfigLastReloadTime,
                                metric::kConfigLastReloadTimeHelp, r)
                           .Add({});

  unknown_ = std::make_shared<VariantMetrics>();
  unknown_->registry = registry_;
  AddRequestCounters(*requests_,
                     {{metric::kModel, metric::kUnknown},
                      {metric::kVariant, metric::kUnknown},
                      {metric::kBits, metric::kUnknown}},
                     *unknown_);
}

// civetweb's stop waits until its listener's poll() times out, up to 2 s;
// connecting to the listener while it stops wakes it at once, so that
// `quantserve serve` exits promptly on SIGTERM.
ServerMetrics::~ServerMetrics() {
  if (!exposer_) return;
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!stopped) Poke(address_, port_);
    }
  });
  exposer_.reset();
  stopped = true;
  waker.join();
}

absl::Status ServerMetrics::Expose(const std::string& address) {
  if (exposer_) return absl::FailedPreconditionError("metrics are already exposed");
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
    const std::vector<int> ports = exposer->GetListeningPorts();
    if (ports.empty()) {
      return absl::UnavailableError(
          absl::StrCat("metrics: cannot listen on ", address, " (no port bound)"));
    }
    exposer->RegisterCollectable(registry_);
    exposer->RegisterCollectable(process_);
    port_ = ports.front();
    address_ = address;
    exposer_ = std::move(exposer);
  } catch (const std::exception& e) {
    // Debian's civetweb is built without IPv6: "[::]:9090" cannot bind.
    const bool ipv6 = !address.empty() && address.front() == '[';
    return absl::UnavailableError(absl::StrCat(
        "metrics: cannot listen on ", address,
        ipv6 ? " (IPv6 addresses are not supported by the metrics HTTP server; use an IPv4 "
               "address such as 0.0.0.0:PORT): "
             : " (address in use or invalid?): ",
        e.what()));
  }
  return absl::OkStatus();
}

std::vector<std::shared_ptr<VariantMetrics>> ServerMetrics::ForModel(
    const BuiltModel& model, const MonitoringOptions& monitoring) {
  // The accuracy drop is measured against the model's evaluated fp32 variant.
  std::optional<double> fp32_accuracy;
  for (const auto& v : model.variants) {
    if (v.report.method == "fp32" && v.report.evaluated) fp32_accuracy = v.report.accuracy;
  }
  std::vector<std::shared_ptr<VariantMetrics>> out;
  for (const auto& v : model.variants) {
    const VariantReport& r = v.report;
    const Labels labels = {{metric::kModel, model.name},
                           {metric::kVariant, r.name},
                           {metric::kBits, std::to_string(r.weight_bits)}};
    auto m = std::make_shared<VariantMetrics>();
    m->registry = registry_;
    AddRequestCounters(*requests_, labels, *m);
    m->request_duration = &request_duration_->Add(labels, SecondsBuckets());
    m->inflight = &inflight_->Add(labels);
    m->queue_duration = &queue_duration_->Add(labels, SecondsBuckets());
    m->compute_duration = &compute_duration_->Add(labels, SecondsBuckets());
    m->batch_size = &batch_size_->Add(labels, RowBuckets());
    weight_bytes_->Add(labels).Set(static_cast<double>(r.weight_bytes));
    build_seconds_->Add(labels).Set(r.build_seconds);
    if (r.evaluated) {
      accuracy_->Add(labels).Set(r.accuracy);
      top1_agreement_->Add(labels).Set(r.top1_agreement);
      if (fp32_accuracy) accuracy_drop_->Add(labels).Set(*fp32_accuracy - r.accuracy);
    }
    if (monitoring.drift) {
      m->drift_enqueued = &drift_enqueued_->Add(labels);
      m->drift_dropped = &drift_dropped_->Add(labels);
      if (static_cast<int>(out.size()) != monitoring.drift_reference) {
        m->drift_samples = &drift_samples_->Add(labels);
        m->drift_agreements = &drift_agreements_->Add(labels);
        m->drift_kl = &drift_kl_->Add(labels, KlBuckets());
        m->drift_relative_error = &drift_relative_error_->Add(labels, RelativeErrorBuckets());
        m->drift_errors = &drift_errors_->Add(labels);
      }
    }
    if (monitoring.feedback) {
      m->feedback_samples = &feedback_samples_->Add(labels);
      m->feedback_correct = &feedback_correct_->Add(labels);
    }
    out.push_back(std::move(m));
  }
  return out;
}

void ServerMetrics::ObserveLoad(bool success, bool reload) {
  last_reload_successful_->Set(success ? 1 : 0);
  if (reload) (success ? reloads_success_ : reloads_failure_)->Increment();
  if (success) {
    last_reload_time_->Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
            .count());
  }
}

std::shared_ptr<ModelMetrics> ServerMetrics::ForModelMonitoring(
    const std::string& model, const MonitoringOptions& monitoring) {
  auto m = std::make_shared<ModelMetrics>();
  m->registry = registry_;
  const Labels labels = {{metric::kModel, model}};
  if (monitoring.drift) m->drift_queue_length = &drift_queue_length_->Add(labels);
  if (monitoring.feedback) m->feedback_unmatched = &feedback_unmatched_->Add(labels);
  return m;
}

void RequestMetrics::Serving(std::shared_ptr<VariantMetrics> variant) {
  if (resolved_) return;
  resolved_ = true;
  variant_ = std::move(variant);
  if (variant_ && variant_->inflight) variant_->inflight->Increment();
}

grpc::Status RequestMetrics::Finish(grpc::Status status) {
  VariantMetrics* m = resolved_ ? variant_.get() : fallback_;
  if (m == nullptr) return status;
  const int code = static_cast<int>(status.error_code());
  m->requests[code >= 0 && code < kGrpcCodeCount ? code : 2]->Increment();  // 2: UNKNOWN
  if (m->request_duration) {
    m->request_duration->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  if (resolved_ && m->inflight) m->inflight->Decrement();
  return status;
}

}  // namespace qs
