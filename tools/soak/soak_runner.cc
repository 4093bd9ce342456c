#include "tools/soak/soak_runner.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <thread>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "tools/soak/load_driver.h"
#include "tools/soak/metrics_scrape.h"
#include "tools/soak/server_process.h"
#include "tools/soak/workload.h"

namespace qs::soak {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::chrono::system_clock::time_point In(milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// The server being soaked: a child process, or an address.
class Target {
 public:
  Target(const Options& o, Report& report) : options_(o), report_(report) {}

  // Starts the child (--serve) and finds its ports; false (with a failure
  // recorded) when it cannot.
  bool Start() {
    if (options_.serve_binary.empty()) {
      address_ = options_.address;
      if (!options_.metrics_address.empty()) {
        const size_t colon = options_.metrics_address.rfind(':');
        metrics_host_ = options_.metrics_address.substr(0, colon);
        metrics_port_ = std::stoi(options_.metrics_address.substr(colon + 1));
      }
      report_.target = address_;
      return true;
    }
    const std::string log = options_.server_log.empty()
                                ? "/tmp/quantserve-soak-" + std::to_string(getpid()) + ".log"
                                : options_.server_log;
    report_.server_log = log;
    report_.target = "serve " + options_.serve_binary + " --config " + options_.config;
    server_ = std::make_unique<ServerProcess>(options_.serve_binary, options_.config,
                                              options_.set, log);
    if (!server_->started()) return Fail("cannot start " + options_.serve_binary);
    if (!server_->WaitForPorts(milliseconds(static_cast<int64_t>(options_.startup_timeout_s * 1000)))) {
      return Fail("the server never logged its ports; log tail:\n" + server_->LogTail(20));
    }
    address_ = "127.0.0.1:" + std::to_string(server_->grpc_port());
    metrics_host_ = "127.0.0.1";
    metrics_port_ = server_->metrics_port();
    return true;
  }

  bool Fail(const std::string& why) {
    report_.failures.push_back(why);
    return false;
  }

  const std::string& address() const { return address_; }
  ServerProcess* process() { return server_.get(); }

  // Is the server still there? Records how it died when it is not.
  bool Alive(const std::shared_ptr<grpc::Channel>& channel) {
    if (server_) {
      if (!server_->Exited()) return true;
      report_.server_death = "the server process died: " +
                             DescribeWaitStatus(*server_->exit_status()) + "; log tail:\n" +
                             server_->LogTail(30);
      return false;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(milliseconds(2000)));
      inference::ServerLiveResponse resp;
      if (inference::GRPCInferenceService::NewStub(channel)
              ->ServerLive(&ctx, inference::ServerLiveRequest(), &resp)
              .ok()) {
        return true;
      }
    }
    report_.server_death = "the server stopped answering ServerLive";
    return false;
  }

  ProcSample Sample() {
    if (server_) return SampleProcess(server_->pid());
    ProcSample s;
    if (auto m = Scrape()) {
      auto rss = SumBy(*m, "process_resident_memory_bytes", "");
      if (!rss.empty()) s.rss_bytes = static_cast<int64_t>(rss[""]);
      auto fds = SumBy(*m, "process_open_fds", "");
      if (!fds.empty()) s.fds = static_cast<int64_t>(fds[""]);
    }
    return s;
  }

  std::optional<std::vector<MetricSample>> Scrape() {
    if (metrics_port_ <= 0) return std::nullopt;
    auto body = FetchMetrics(metrics_host_, metrics_port_, milliseconds(5000));
    if (!body) return std::nullopt;
    return ParseMetrics(*body);
  }

 private:
  const Options& options_;
  Report& report_;
  std::unique_ptr<ServerProcess> server_;
  std::string address_;
  std::string metrics_host_;
  int metrics_port_ = -1;
};

bool WaitReady(Target& target, const std::shared_ptr<grpc::Channel>& channel, double timeout_s) {
  const auto until = Clock::now() + Seconds(timeout_s);
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  while (Clock::now() < until) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(milliseconds(1000)));
    inference::ServerReadyResponse resp;
    if (stub->ServerReady(&ctx, inference::ServerReadyRequest(), &resp).ok() && resp.ready()) {
      return true;
    }
    if (!target.Alive(channel)) return false;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

// The soaked model's input, output and variants, as the server describes them.
std::optional<ModelInfo> Describe(const Options& o, const std::shared_ptr<grpc::Channel>& channel,
                                  std::string* error) {
  auto stub = v1::InferenceService::NewStub(channel);
  ModelInfo info;
  info.model = o.model;
  if (info.model.empty()) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(milliseconds(10000)));
    v1::ListModelsResponse list;
    grpc::Status s = stub->ListModels(&ctx, v1::ListModelsRequest(), &list);
    if (!s.ok() || list.models_size() == 0) {
      *error = "ListModels: " + s.error_message();
      return std::nullopt;
    }
    info.model = list.models(0).name();
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(In(milliseconds(10000)));
  v1::GetModelMetadataRequest req;
  req.set_model(info.model);
  v1::ModelMetadata meta;
  grpc::Status s = stub->GetModelMetadata(&ctx, req, &meta);
  if (!s.ok()) {
    *error = "GetModelMetadata: " + s.error_message();
    return std::nullopt;
  }
  if (meta.inputs_size() != 1 || meta.outputs_size() < 1 || meta.outputs(0).shape_size() != 2 ||
      meta.inputs(0).datatype() != v1::FP32) {
    *error = "model " + info.model + ": the soak needs one FP32 image input and [N, classes] logits";
    return std::nullopt;
  }
  info.input_name = meta.inputs(0).name();
  info.sample_shape.assign(meta.inputs(0).shape().begin() + 1, meta.inputs(0).shape().end());
  info.output_name = meta.outputs(0).name();
  info.classes = meta.outputs(0).shape(1);
  std::vector<std::string> all;
  for (const auto& v : meta.variants()) all.push_back(v.name());
  info.variants = o.variants.empty() ? all : o.variants;
  for (const auto& v : info.variants) {
    if (std::find(all.begin(), all.end(), v) == all.end()) {
      *error = "variant '" + v + "' is not served for model " + info.model;
      return std::nullopt;
    }
  }
  return info;
}

// Each variant's logits for every pool image, asked 16 images at a time
// before any load.
bool TakeReferences(Workload& w, const std::shared_ptr<grpc::Channel>& channel,
                    std::string* error) {
  auto stub = v1::InferenceService::NewStub(channel);
  const int64_t c = w.info().classes;
  for (int v = 0; v < static_cast<int>(w.info().variants.size()); ++v) {
    std::vector<float> logits(static_cast<size_t>(w.images() * c));
    for (int first = 0; first < w.images(); first += 16) {
      Expectation e{v, first, std::min(16, w.images() - first)};
      v1::PredictRequest req;
      w.FillPredict(e, &req);
      req.set_raw_output(true);
      v1::PredictResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(In(milliseconds(30000)));
      grpc::Status s = stub->Predict(&ctx, req, &resp);
      if (!s.ok() || resp.outputs_size() < 1 ||
          resp.outputs(0).raw_data().size() != static_cast<size_t>(e.rows * c) * sizeof(float)) {
        *error = "reference answers of " + w.info().variants[v] + ": " + s.error_message();
        return false;
      }
      std::memcpy(logits.data() + first * c, resp.outputs(0).raw_data().data(),
                  resp.outputs(0).raw_data().size());
    }
    w.SetReference(v, std::move(logits));
  }
  return true;
}

// One request of every size 0..rows, alone, per variant: each becomes a
// batch of exactly that size, so every plan the soak can need is built (and
// cached) before the RSS baseline instead of trickling in as rare batch
// sizes first occur.
bool Prime(const Workload& w, const std::shared_ptr<grpc::Channel>& channel, int rows,
           std::string* error) {
  auto stub = v1::InferenceService::NewStub(channel);
  rows = std::min(rows, w.images());
  for (int v = 0; v < static_cast<int>(w.info().variants.size()); ++v) {
    for (int r = 0; r <= rows; ++r) {
      v1::PredictRequest req;
      w.FillPredict(Expectation{v, 0, r}, &req);
      v1::PredictResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(In(milliseconds(30000)));
      grpc::Status s = stub->Predict(&ctx, req, &resp);
      if (!s.ok() && !(r == 0 && s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)) {
        *error = "priming " + w.info().variants[v] + " with " + std::to_string(r) +
                 " rows: " + s.error_message();
        return false;
      }
    }
  }
  return true;
}

int64_t Median(std::vector<int64_t> v) {
  if (v.empty()) return -1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

Report RunSoak(const Options& o, const std::function<void(const std::string&)>& progress) {
  Report report;
  report.warmup_s = o.warmup_s;
  report.duration_s = o.duration_s;
  report.connections = o.connections;
  report.rss_limit_pct = o.rss_growth_limit_pct;
  Target target(o, report);
  if (!target.Start()) return report;
  auto control = NewChannel(target.address());
  progress("waiting for " + target.address() + " to be ready");
  if (!WaitReady(target, control, o.startup_timeout_s)) {
    report.server_alive = target.Alive(control);
    report.failures.push_back("the server did not become ready within " +
                              std::to_string(o.startup_timeout_s) + " s");
    if (!report.server_death.empty()) report.failures.push_back(report.server_death);
    return report;
  }
  std::string error;
  std::optional<ModelInfo> info = Describe(o, control, &error);
  if (!info) {
    report.failures.push_back(error);
    return report;
  }
  report.model = info->model;
  report.variants = info->variants;
  DatasetSpec spec;
  spec.inputs = o.data_dir + "/t10k-images-idx3-ubyte.gz";
  spec.labels = o.data_dir + "/t10k-labels-idx1-ubyte.gz";
  spec.limit = o.images;
  absl::StatusOr<Dataset> data = LoadDataset(spec, info->sample_shape);
  if (!data.ok()) {
    report.failures.push_back("dataset: " + std::string(data.status().message()));
    return report;
  }
  Workload workload(*info, std::move(*data), o);
  if (!TakeReferences(workload, control, &error)) {
    report.failures.push_back(error);
    return report;
  }
  const int prime_rows = std::max(o.prime_rows, o.max_rows);
  if (!Prime(workload, control, prime_rows, &error)) {
    report.failures.push_back(error);
    return report;
  }
  progress("reference answers taken for " + std::to_string(workload.images()) +
           " images per variant, plans primed for 0.." + std::to_string(prime_rows) +
           " rows; starting the load");

  // The server's counters before the load: a server soaked before (--address)
  // has counted other calls already.
  std::map<std::string, double> base_codes, base_models;
  if (auto m = target.Scrape()) {
    base_codes = SumBy(*m, "quantserve_requests_total", "code");
    base_models = SumBy(*m, "quantserve_requests_total", "model");
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < std::max(1, o.connections); ++i) channels.push_back(NewChannel(target.address()));
  Stats stats(static_cast<int>(info->variants.size()));
  auto driver = std::make_unique<LoadDriver>(o, workload, channels, &stats);
  report.clients_per_category = driver->ClientsPerCategory();

  // Warm-up, then the measured soak, one report per interval.
  const auto load_start = Clock::now();
  driver->Start();
  // The server is sampled every second; an interval reports the median of
  // its samples (RSS swings with the large requests in flight at the moment,
  // e.g. the 12.8 MB too_many_rows garbage, so one sample is noise), and RSS
  // growth compares the median of the first soak interval with that of the
  // last.
  bool alive = true;
  ProcSample start_sample, end_sample;
  int64_t rss_peak = -1;
  for (Phase phase : {Phase::kWarmup, Phase::kSoak}) {
    driver->SetPhase(phase);
    const double length = phase == Phase::kWarmup ? o.warmup_s : o.duration_s;
    const auto phase_end = Clock::now() + Seconds(length);
    bool first_interval = true;
    while (alive && Clock::now() < phase_end) {
      const auto interval_end = std::min(phase_end, Clock::now() + Seconds(o.interval_s));
      std::vector<int64_t> rss, threads, fds;
      while (alive && Clock::now() < interval_end) {
        std::this_thread::sleep_until(std::min(interval_end, Clock::now() + std::chrono::seconds(1)));
        alive = target.Alive(control);
        if (!alive) break;
        const ProcSample p = target.Sample();
        if (p.rss_bytes >= 0) rss.push_back(p.rss_bytes);
        if (p.threads >= 0) threads.push_back(p.threads);
        if (p.fds >= 0) fds.push_back(p.fds);
        if (phase == Phase::kSoak) rss_peak = std::max(rss_peak, p.rss_bytes);
      }
      IntervalStats s = stats.TakeInterval();
      s.phase = phase;
      s.t_s = std::chrono::duration<double>(Clock::now() - load_start).count();
      s.rss_bytes = Median(rss);
      s.threads = Median(threads);
      s.fds = Median(fds);
      progress(IntervalLine(s));
      report.intervals.push_back(s);
      if (phase == Phase::kSoak) {
        const ProcSample sample{s.rss_bytes, s.threads, s.fds};
        if (first_interval) start_sample = sample;
        end_sample = sample;
        first_interval = false;
      }
    }
  }
  report.rss_peak = rss_peak;
  report.server_alive = alive;
  if (!alive) report.failures.push_back(report.server_death);

  // Stop the load; every call must come back.
  driver->StopIssuing();
  const auto drain_until = Clock::now() + milliseconds(o.timeout_ms) + std::chrono::seconds(5);
  if (!driver->WaitIdle(drain_until)) {
    report.failures.push_back(std::to_string(driver->calls_in_flight()) +
                              " calls still unanswered " + std::to_string(o.timeout_ms / 1000 + 5) +
                              " s after the load stopped (hung)");
    driver->CancelAll();
    driver->WaitIdle(Clock::now() + std::chrono::seconds(5));
  }

  // The server's own view once the load is off.
  if (alive) {
    if (auto m = target.Scrape()) {
      report.server_codes = SumBy(*m, "quantserve_requests_total", "code");
      report.server_models = SumBy(*m, "quantserve_requests_total", "model");
      for (auto& [code, n] : report.server_codes) n -= base_codes[code];
      for (auto& [model, n] : report.server_models) n -= base_models[model];
      auto inflight = SumBy(*m, "quantserve_inflight_requests", "");
      report.server_inflight_after = inflight.empty() ? 0 : inflight[""];
      auto sum = [&](const char* name) {
        auto s = SumBy(*m, name, "");
        return s.empty() ? 0.0 : s[""];
      };
      report.drift_enqueued = sum("quantserve_drift_enqueued_total");
      report.drift_dropped = sum("quantserve_drift_dropped_total");
      report.drift_errors = sum("quantserve_drift_errors_total");
    }
  }

  // --serve: SIGTERM with the load on; every call gets an answer, the server exits 0.
  ServerProcess* server = target.process();
  if (server != nullptr && alive && o.shutdown_under_load) {
    report.shutdown.ran = true;
    progress("shutdown under load: load on for " + std::to_string(o.shutdown_load_s) +
             " s, then SIGTERM");
    driver->SetPhase(Phase::kSoak);
    driver->Start();
    std::this_thread::sleep_for(Seconds(o.shutdown_load_s));
    report.shutdown.in_flight_at_sigterm = driver->calls_in_flight();
    driver->SetPhase(Phase::kShutdown);
    const auto signalled = Clock::now();
    server->Signal(SIGTERM);
    std::optional<int> status = server->WaitExit(milliseconds(o.shutdown_grace_ms + 15000));
    report.shutdown.seconds_to_exit =
        std::chrono::duration<double>(Clock::now() - signalled).count();
    driver->StopIssuing();
    report.shutdown.exit = status ? DescribeWaitStatus(*status) : "still running";
    if (!driver->WaitIdle(Clock::now() + milliseconds(o.timeout_ms) + std::chrono::seconds(5))) {
      report.shutdown.hung_calls = driver->calls_in_flight();
      driver->CancelAll();
      driver->WaitIdle(Clock::now() + std::chrono::seconds(5));
    }
    report.shutdown.codes = stats.ByCategory(Phase::kShutdown);
    if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      report.failures.push_back("shutdown under load: " + report.shutdown.exit + " (want exit code 0)" +
                                "; log tail:\n" + server->LogTail(20));
    } else if (report.shutdown.seconds_to_exit * 1000 > o.shutdown_grace_ms + 2000) {
      report.failures.push_back("shutdown under load: exit took longer than the grace period");
    }
    if (report.shutdown.hung_calls > 0) {
      report.failures.push_back("shutdown under load: " + std::to_string(report.shutdown.hung_calls) +
                                " calls never answered");
    }
  }
  driver.reset();

  // Everything the calls showed.
  for (Phase p : {Phase::kWarmup, Phase::kSoak, Phase::kShutdown}) {
    auto m = stats.ByCategory(p);
    int64_t total = 0;
    for (const auto& [name, c] : m) total += c.total();
    if (total > 0) report.by_phase.emplace_back(PhaseName(p), m);
  }
  report.garbage_kinds = stats.ByGarbageKind();
  report.unexpected = stats.Unexpected();
  report.bad_answers = stats.BadAnswers();
  std::tie(report.p50_ms, report.p99_ms) = stats.Latency(Phase::kSoak);
  report.max_logit_diff = stats.MaxLogitDiff();
  report.rss_start = start_sample.rss_bytes;
  report.rss_end = end_sample.rss_bytes;
  report.threads_start = start_sample.threads;
  report.threads_end = end_sample.threads;
  report.fds_start = start_sample.fds;
  report.fds_end = end_sample.fds;

  // Verdicts.
  if (stats.UnexpectedCount() > 0) {
    report.failures.push_back(std::to_string(stats.UnexpectedCount()) +
                              " calls ended with an unexpected gRPC code");
  }
  if (stats.BadAnswerCount() > 0) {
    report.failures.push_back(std::to_string(stats.BadAnswerCount()) + " OK answers were wrong");
  }
  if (stats.Finished(Phase::kSoak) == 0) report.failures.push_back("no call finished in the soak phase");
  if (report.rss_start > 0 && report.rss_end > 0) {
    report.rss_growth_pct = 100.0 * static_cast<double>(report.rss_end - report.rss_start) /
                            static_cast<double>(report.rss_start);
    if (report.rss_growth_pct > o.rss_growth_limit_pct) {
      report.failures.push_back("server RSS grew " + std::to_string(report.rss_growth_pct) +
                                " % after the warm-up (limit " +
                                std::to_string(o.rss_growth_limit_pct) + " %)");
    }
  } else if (server != nullptr) {
    report.failures.push_back("could not read the server's RSS");
  }
  if (report.fds_start >= 0 && report.fds_end > report.fds_start + o.fd_growth_limit) {
    report.failures.push_back("server open fds grew from " + std::to_string(report.fds_start) +
                              " to " + std::to_string(report.fds_end));
  }
  if (!report.server_codes.empty()) {
    static const std::set<std::string> kServerCodes = {
        "OK", "CANCELLED", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT", "NOT_FOUND",
        "RESOURCE_EXHAUSTED"};
    for (const auto& [code, n] : report.server_codes) {
      if (n > 0 && !kServerCodes.count(code)) {
        report.failures.push_back("the server counted " + std::to_string(static_cast<int64_t>(n)) +
                                  " requests with code " + code);
      }
    }
    // The server's CANCELLED must come from clients that cancelled (an
    // expired deadline is DEADLINE_EXCEEDED, also in the server's count).
    int64_t client_cancelled = 0;
    for (Phase p : {Phase::kWarmup, Phase::kSoak}) {
      client_cancelled += stats.ByCategory(p)[CategoryName(Category::kCancel)].codes["CANCELLED"];
    }
    if (report.server_codes["CANCELLED"] > static_cast<double>(client_cancelled)) {
      report.failures.push_back("the server counted " +
                                std::to_string(static_cast<int64_t>(report.server_codes["CANCELLED"])) +
                                " CANCELLED requests, but clients cancelled only " +
                                std::to_string(client_cancelled));
    }
    if (report.server_inflight_after != 0) {
      report.failures.push_back("quantserve_inflight_requests is " +
                                std::to_string(report.server_inflight_after) +
                                " after the load stopped");
    }
    if (report.drift_errors > 0) {
      report.failures.push_back("drift replays failed " +
                                std::to_string(static_cast<int64_t>(report.drift_errors)) + " times");
    }
    for (const auto& [label, n] : report.server_models) {
      if (n > 0 && label != info->model && label != "unknown") {
        report.failures.push_back("requests counted under model label '" + label + "'");
      }
    }
  }
  return report;
}

}  // namespace qs::soak
