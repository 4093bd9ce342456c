#include "tools/soak/soak_runner.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "tools/soak/load_driver.h"
#include "tools/soak/metrics_scrape.h"
#include "tools/soak/server_process.h"
#include "tools/soak/server_setup.h"
#include "tools/soak/workload.h"

namespace qs::soak {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
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
