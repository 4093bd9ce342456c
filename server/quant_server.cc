#include "server/quant_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/buffer_cache.h"
#include "engine/status_macros.h"
#include "server/drift_metrics.h"
#include "server/file_fingerprint.h"
#include "server/malformed_request.h"
#include "server/malloc_arenas.h"
#include "server/usable_cores.h"
#include "server/access_log.h"
#include "server/config_mapping.h"

namespace qs {

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Plaintext, TLS, or mutual TLS (client_ca set: clients must present a
// certificate signed by it).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSection& server) {
  if (!server.tls) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadFile(server.tls->key_file));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(server.tls->cert_file));
  options.pem_key_cert_pairs.push_back(pair);
  if (!server.tls->client_ca_file.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs, ReadFile(server.tls->client_ca_file));
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace

QuantServer::QuantServer(ServerConfig config)
    : config_(std::move(config)), metrics_(std::make_unique<ServerMetrics>()) {}

QuantServer::~QuantServer() {
  if (server_) Shutdown(std::chrono::milliseconds(0));  // no-op if already shut down
}

absl::StatusOr<std::unique_ptr<QuantServer>> QuantServer::Start(const ServerConfig& config) {
  auto server = std::unique_ptr<QuantServer>(new QuantServer(config));
  // Process-wide, like the arenas: a `server` section change needs a restart.
  BufferCache::Global().SetLimit(static_cast<size_t>(config.server.activation_cache_mb) << 20);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  DecodeLimits limits;
  limits.max_elements = config.server.max_tensor_elements;
  limits.max_batch_rows = config.server.max_batch_rows;
  limits.reject_nonfinite = config.server.nan_policy == NanPolicy::kReject;
  server->service_ =
      std::make_unique<InferenceServiceImpl>(server->registry_, limits, server->metrics_.get());
  server->kserve_service_ =
      std::make_unique<KServeServiceImpl>(server->registry_, limits, server->metrics_.get());
  grpc::ServerBuilder builder;
  auto credentials = MakeServerCredentials(config.server);
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(config.server.grpc_address, *credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.server.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.server.max_message_bytes));
  if (config.server.max_connection_age_ms > 0) {
    // Clients reconnect, and a DNS round-robin client then also reaches
    // replicas added since it connected; calls in flight get the grace.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(config.server.max_connection_age_ms));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               static_cast<int>(config.server.shutdown_grace_ms));
  }
  // Bounds the calls in progress: beyond it, new calls get RESOURCE_EXHAUSTED
  // at once. Inference calls (callback API) are counted by the serving gate;
  // the synchronous metadata methods hold a thread each, bounded by the
  // quota. Unbounded, a flood of calls that clients abandon grew to thousands
  // of threads (docs/RELIABILITY.md).
  server->max_concurrent_calls_ = EffectiveMaxConcurrentCalls(
      config, UsableCores());
  server->registry_.gate().SetLimit(server->max_concurrent_calls_);
  grpc::ResourceQuota quota("quantserve-calls");
  quota.SetMaxThreads(server->max_concurrent_calls_);
  builder.SetResourceQuota(quota);
  if (config.server.worker_threads > 0) {
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                                config.server.worker_threads);
  }
  builder.RegisterService(server->service_.get());
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.push_back(MakeMalformedRequestFactory());  // first, so the access log sees its status
    if (config.server.access_log) f.push_back(MakeAccessLogFactory());
    builder.experimental().SetInterceptorCreators(std::move(f));
  }
  builder.RegisterService(server->kserve_service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", config.server.grpc_address,
        config.server.tls ? absl::StrCat(" (address in use or invalid, or server.tls: the key '",
                                         config.server.tls->key_file,
                                         "' does not match the certificate '",
                                         config.server.tls->cert_file, "' or is not PEM)")
                          : " (address in use or invalid?)"));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(false);
  // Last, so that a start that fails earlier never starts the metrics HTTP
  // server (and its threads) only to stop it again.
  if (!config.server.metrics_address.empty()) {
    RETURN_IF_ERROR(server->metrics_->Expose(config.server.metrics_address));
  }
  return server;
}

absl::Status QuantServer::SetUpMonitoring(const ModelConfig& mc, ServedModel& served) {
  const DriftConfig& drift = mc.drift;
  MonitoringOptions monitoring;
  monitoring.feedback = drift.feedback_capacity > 0;
  // The reference: as configured, or the first unquantized variant.
  std::string reference = drift.reference;
  for (size_t i = 0; reference.empty() && i < mc.variants.size(); ++i) {
    if (mc.variants[i].unquantized()) reference = mc.variants[i].name;
  }
  monitoring.drift_reference = served.IndexOf(reference);
  monitoring.drift = drift.sample_rate > 0 && monitoring.drift_reference >= 0;
  if (monitoring.drift) {
    const CompiledModel& m = *served.built.variants[monitoring.drift_reference].model;
    // Drift compares the first float32 output (FirstFloatOutput).
    const bool any_float = std::any_of(m.outputs().begin(), m.outputs().end(),
                                       [](const ValueInfo& o) { return o.dtype == DataType::kFloat32; });
    if (!any_float) {
      spdlog::warn("model {}: drift monitoring is off: it has no float32 output", mc.name);
      monitoring.drift = false;
    }
  }
  served.metrics = metrics_->ForModel(served.built, monitoring);
  served.model_metrics = metrics_->ForModelMonitoring(mc.name, monitoring);
  const int variant_count = static_cast<int>(served.built.variants.size());
  if (monitoring.feedback) {
    served.feedback = std::make_shared<FeedbackStore>(drift.feedback_capacity, variant_count);
  }
  if (monitoring.drift) {
    DriftOptions options;
    options.sample_rate = drift.sample_rate;
    options.mirror = drift.mode == DriftConfig::Mode::kMirror;
    options.reference = monitoring.drift_reference;
    options.queue_capacity = drift.queue_capacity;
    std::vector<std::shared_ptr<const CompiledModel>> models;
    std::vector<std::string> names;
    for (const BuiltVariant& v : served.built.variants) {
      models.push_back(v.model);
      names.push_back(v.report.name);
    }
    auto observer = std::make_shared<DriftMetricsObserver>(mc.name, std::move(names),
                                                           served.metrics, served.model_metrics);
    served.drift = std::make_shared<DriftMonitor>(std::move(models), options, std::move(observer),
                                                  served.feedback);
    spdlog::info("model {}: drift monitoring on: {} of requests, {} mode, against variant {}",
                 mc.name, drift.sample_rate, DriftModeName(drift.mode), reference);
  }
  return absl::OkStatus();
}

namespace {

// Plans for every batch size dynamic batching can form, built before the
// model is published (see BatchingConfig::warm_up). A size whose plan cannot
// be built (e.g. its tensors exceed the engine's plan limits) stops the warm-up, not the
// load: a batch of that size fails when it forms, as it would have anyway.
void WarmUp(const ModelConfig& mc, const BuiltVariant& v) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<int> plans = v.model->WarmUp(mc.batching.max_batch_size);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!plans.ok()) {
    spdlog::warn("model {} variant {}: warm-up stopped after {:.2f}s: {}", mc.name,
                 v.report.name, seconds, plans.status().ToString());
    return;
  }
  spdlog::info("model {} variant {}: warmed up {} batch sizes in {:.2f}s", mc.name,
               v.report.name, *plans, seconds);
}

}  // namespace

absl::StatusOr<std::shared_ptr<ServedModel>> QuantServer::BuildServed(const ModelConfig& mc) {
  // Before building, so that a file replaced during the build is seen as
  // changed by the next reload rather than missed.
  const std::string fingerprint = FingerprintFiles(ModelFiles(mc));
  ModelSpec spec = ToModelSpec(mc);
  spec.compile.intra_op_threads = config_.server.intra_op_threads;
  spec.progress = [](const std::string& line) { spdlog::info("{}", line); };
  auto built_or = BuildModel(spec);
  ReturnFreedMemory();  // the build's transient buffers, kept resident by malloc otherwise
  if (!built_or.ok()) return built_or.status();
  BuiltModel built = *std::move(built_or);
  auto served = std::make_shared<ServedModel>();
  served->built = std::move(built);
  served->default_variant = mc.default_variant;
  served->config = mc;
  served->files_fingerprint = fingerprint;
  BatchingOptions batching;
  batching.max_batch_size = mc.batching.max_batch_size;
  batching.max_queue_delay = std::chrono::microseconds(mc.batching.max_queue_delay_us);
  batching.max_queue_rows = mc.batching.max_queue_rows;
  batching.workers = mc.batching.workers;
  batching.threads_per_run = config_.server.intra_op_threads > 0
                                 ? config_.server.intra_op_threads
                                 : UsableCores();
  RETURN_IF_ERROR(SetUpMonitoring(mc, *served));
  bool warmed = false;
  for (size_t i = 0; i < served->built.variants.size(); ++i) {
    std::shared_ptr<VariantMetrics> metrics = served->metrics[i];
    served->batchers.push_back(std::make_shared<Batcher>(
        served->built.variants[i].model, batching,
        [metrics](const BatchEvent& e) { metrics->ObserveBatch(e); }));
    if (mc.batching.warm_up && served->batchers.back()->batching()) {
      WarmUp(mc, served->built.variants[i]);
      warmed = true;
    }
  }
  if (warmed) ReturnFreedMemory();  // the warm-up's transient buffers
  return served;
}

absl::Status QuantServer::LoadModels() {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  for (const ModelConfig& mc : config_.models) {
    auto served = BuildServed(mc);
    if (!served.ok()) {
      metrics_->ObserveLoad(false, /*reload=*/false);
      return served.status();
    }
    registry_.Publish(std::move(*served));
  }
  registry_.MarkLoaded();
  metrics_->ObserveLoad(true, /*reload=*/false);
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (!shut_down_) server_->GetHealthCheckService()->SetServingStatus(true);
  return absl::OkStatus();
}

namespace {

// A model's config without its source locations (file:line:column of each
// variant and layer), which move whenever lines above them change.
ModelConfig WithoutLocations(ModelConfig mc) {
  for (VariantConfig& v : mc.variants) {
    v.location.clear();
    for (LayerOverrideConfig& layer : v.layers) layer.location.clear();
  }
  return mc;
}

}  // namespace

absl::Status QuantServer::Reload(const ServerConfig& config) {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  if (!(config.server == config_.server)) {
    spdlog::warn("config reload: the `server` section of {} changed; it takes effect only on "
                 "restart (models are reloaded)",
                 config.source);
  }
  std::vector<std::shared_ptr<const ServedModel>> next;
  int rebuilt = 0;
  for (const ModelConfig& mc : config.models) {
    std::shared_ptr<const ServedModel> old = registry_.Find(mc.name);
    std::string why;
    if (old == nullptr) {
      why = "new model";
    } else if (!(WithoutLocations(old->config) == WithoutLocations(mc))) {
      why = "its config changed";
    } else if (old->files_fingerprint != FingerprintFiles(ModelFiles(mc))) {
      why = "its model or dataset files changed";
    }
    if (why.empty()) {
      next.push_back(std::move(old));
      continue;
    }
    spdlog::info("config reload: building model {} ({})", mc.name, why);
    auto served = BuildServed(mc);
    if (!served.ok()) {
      metrics_->ObserveLoad(false, /*reload=*/true);
      return absl::Status(served.status().code(),
                          absl::StrCat("config reload rejected, the previous models keep "
                                       "serving: ",
                                       served.status().message()));
    }
    next.push_back(std::move(*served));
    ++rebuilt;
  }
  std::vector<std::string> removed;
  for (const auto& m : registry_.List()) {
    const bool kept = std::any_of(config.models.begin(), config.models.end(),
                                  [&](const ModelConfig& mc) { return mc.name == m->name(); });
    if (!kept) removed.push_back(m->name());
  }
  registry_.ReplaceAll(std::move(next));
  config_.models = config.models;
  metrics_->ObserveLoad(true, /*reload=*/true);
  spdlog::info("config reload: {} model(s) built, {} unchanged, {} removed{}{}", rebuilt,
               config.models.size() - rebuilt, removed.size(), removed.empty() ? "" : ": ",
               absl::StrJoin(removed, ", "));
  return absl::OkStatus();
}

void QuantServer::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
  // Drain: refuse new inference calls (UNAVAILABLE), let the ones in flight
  // finish within the grace period, then stop gRPC at once — waiting on
  // gRPC's own deadline would also wait for idle connections to answer its
  // GOAWAY ping.
  registry_.gate().StartDraining();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  bool idle = registry_.gate().WaitIdle(deadline);
  // A call already accepted by the transport may not have reached its
  // handler yet: give such calls a short settle period, so they are served
  // or refused (UNAVAILABLE) rather than cancelled.
  if (idle) {
    std::this_thread::sleep_until(
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
    idle = registry_.gate().WaitIdle(deadline);
  }
  if (!idle) spdlog::warn("shutdown grace period over: cancelling calls still in flight");
  server_->Shutdown(std::chrono::system_clock::now());
}

void QuantServer::Wait() { server_->Wait(); }

}  // namespace qs
