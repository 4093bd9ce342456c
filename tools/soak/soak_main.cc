// quantserve-soak: many concurrent clients against one quantserve server on
// loopback for a bounded time — valid calls with checked answers, calls
// cancelled or timed out early, garbage — then a report of every gRPC code
// by client category, latency over time, server RSS growth, crashes and
// (with --serve) a SIGTERM under load. Exit 0 = passed, 1 = failed,
// 2 = usage, 3 = the soak overran its own time bound, 77 = the Fashion-MNIST
// test images are not installed (skipped).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "config/server_config.h"
#include "tools/soak/soak_runner.h"

namespace {

using qs::soak::Options;

// Loopback only: the soak is a load generator, not a tool to aim elsewhere.
bool IsLoopback(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  const std::string host = address.substr(0, colon);
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]";
}

// Limits and grace from the config the child will serve (same overrides).
bool ReadServedConfig(Options& o, bool rows_given, bool elements_given, bool grace_given) {
  auto config = qs::LoadServerConfig(o.config, qs::OverridesFromProcess(o.set));
  if (!config.ok()) {
    std::cerr << "quantserve-soak: --config: " << config.status().message() << "\n";
    return false;
  }
  if (!rows_given) o.max_batch_rows = config->server.max_batch_rows;
  if (!elements_given) o.max_tensor_elements = config->server.max_tensor_elements;
  if (!grace_given) o.shutdown_grace_ms = config->server.shutdown_grace_ms;
  o.nan_rejected = config->server.nan_policy == qs::NanPolicy::kReject;
  if (o.prime_rows < 0) {
    for (const auto& m : config->models) o.prime_rows = std::max(o.prime_rows, m.batching.max_batch_size);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"quantserve-soak: a bounded, loopback-only soak of a quantserve server"};
  app.add_option("--address", o.address, "A running server, HOST:PORT (loopback)");
  app.add_option("--metrics-address", o.metrics_address,
                 "Its /metrics, HOST:PORT (loopback; for RSS and the server's own counts)");
  app.add_option("--serve", o.serve_binary,
                 "Start this `quantserve` binary as a child on free loopback ports")
      ->check(CLI::ExistingFile);
  app.add_option("--config", o.config, "Config for --serve")->check(CLI::ExistingFile);
  app.add_option("--set", o.set, "Extra --set override for --serve (repeatable)");
  app.add_option("--server-log", o.server_log, "Where the child's output goes");
  app.add_option("--startup-timeout-s", o.startup_timeout_s, "Wait for readiness")
      ->capture_default_str();
  app.add_option("--model", o.model, "Model to soak (default: the first served)");
  app.add_option("--variants", o.variants, "Variants, comma-separated (default: all)")
      ->delimiter(',');
  app.add_option("--clients", o.clients, "Concurrent clients")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--connections", o.connections, "TCP connections shared by the clients")
      ->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--cq-threads", o.cq_threads, "Client completion-queue threads")
      ->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--mix", o.mix, "Shares of normal,cancel,tiny-deadline,garbage clients")
      ->delimiter(',')->expected(4)->capture_default_str();
  app.add_option("--max-rows", o.max_rows, "Rows per valid request: 1..N")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--timeout-ms", o.timeout_ms, "Deadline of normal, cancel and garbage calls")
      ->capture_default_str();
  app.add_option("--cancel-max-ms", o.cancel_max_ms, "Cancel clients: TryCancel after 0..N ms")
      ->capture_default_str();
  app.add_option("--tiny-deadline-max-ms", o.tiny_deadline_max_ms,
                 "Tiny-deadline clients: deadlines of 0..N ms")->capture_default_str();
  app.add_option("--pace-ms", o.pace_ms,
                 "Cancel, tiny-deadline and garbage clients start a call at most every N ms "
                 "(0: as fast as they can)")->capture_default_str()->check(CLI::Range(0.0, 10000.0));
  app.add_flag("--allow-overload", o.allow_overload,
               "Accept RESOURCE_EXHAUSTED (full batching queue) for valid calls");
  app.add_option("--data-dir", o.data_dir, "Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--images", o.images, "Test images in the request pool")
      ->capture_default_str()->check(CLI::Range(16, 10000));
  app.add_option("--seed", o.seed, "Random seed")->capture_default_str();
  auto* rows = app.add_option("--max-batch-rows", o.max_batch_rows,
                              "The server's max_batch_rows (default: from --config, else 4096)");
  auto* elements = app.add_option("--max-tensor-elements", o.max_tensor_elements,
                                  "The server's max_tensor_elements (default: from --config)");
  app.add_option("--prime-rows", o.prime_rows,
                 "Before the warm-up, one request of each size 0..N per variant "
                 "(default: the config's largest max_batch_size, else --max-rows)");
  app.add_option("--warmup-s", o.warmup_s, "Load before the RSS baseline")->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--duration-s", o.duration_s, "Measured soak")->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--interval-s", o.interval_s, "Report every N s")->capture_default_str()
      ->check(CLI::Range(0.5, 3600.0));
  app.add_flag("!--no-shutdown", o.shutdown_under_load,
               "--serve: do not end with a SIGTERM under load");
  app.add_option("--shutdown-load-s", o.shutdown_load_s, "Load before that SIGTERM")
      ->capture_default_str();
  auto* grace = app.add_option("--shutdown-grace-ms", o.shutdown_grace_ms,
                               "The server's shutdown_grace_ms (default: from --config)");
  app.add_option("--rss-growth-limit-pct", o.rss_growth_limit_pct, "Fail above this RSS growth")
      ->capture_default_str();
  app.add_option("--logit-tolerance", o.logit_tolerance,
                 "Largest |logit - reference| of a right answer")->capture_default_str();
  app.add_flag("--json", o.json, "Print one JSON object (progress goes to stderr)");
  CLI11_PARSE(app, argc, argv);

  if (o.address.empty() == o.serve_binary.empty()) {
    std::cerr << "quantserve-soak: give exactly one of --address and --serve\n";
    return 2;
  }
  if (!o.serve_binary.empty() && o.config.empty()) {
    std::cerr << "quantserve-soak: --serve needs --config\n";
    return 2;
  }
  if (!o.address.empty() && !IsLoopback(o.address)) {
    std::cerr << "quantserve-soak: --address must be a loopback address (localhost, 127.x, [::1])\n";
    return 2;
  }
  if (!o.metrics_address.empty() && !IsLoopback(o.metrics_address)) {
    std::cerr << "quantserve-soak: --metrics-address must be a loopback address\n";
    return 2;
  }
  for (double m : o.mix) {
    if (m < 0) {
      std::cerr << "quantserve-soak: --mix shares must be >= 0\n";
      return 2;
    }
  }
  if (!std::filesystem::exists(o.data_dir + "/t10k-images-idx3-ubyte.gz")) {
    std::cerr << "quantserve-soak: skipped: no Fashion-MNIST test images in " << o.data_dir
              << " (Debian package dataset-fashion-mnist)\n";
    return 77;
  }
  if (!o.serve_binary.empty() &&
      !ReadServedConfig(o, rows->count() > 0, elements->count() > 0, grace->count() > 0)) {
    return 2;
  }

  // Bounded in time whatever happens: a watchdog ends the soak (and, through
  // PR_SET_PDEATHSIG, its child server) if it overruns every phase's bound.
  const double bound_s = o.startup_timeout_s + o.warmup_s + o.duration_s + o.shutdown_load_s +
                         o.shutdown_grace_ms / 1000.0 + 2.0 * o.timeout_ms / 1000.0 + 120;
  std::thread([bound_s] {
    std::this_thread::sleep_for(std::chrono::duration<double>(bound_s));
    std::fprintf(stderr, "quantserve-soak: overran its bound of %.0f s; aborting\n", bound_s);
    std::fflush(stderr);
    _exit(3);
  }).detach();

  std::FILE* progress_out = o.json ? stderr : stdout;
  auto progress = [progress_out](const std::string& line) {
    std::fprintf(progress_out, "%s\n", line.c_str());
    std::fflush(progress_out);
  };
  qs::soak::Report report = qs::soak::RunSoak(o, progress);
  if (o.json) {
    std::cout << report.ToJson().dump() << std::endl;
  } else {
    std::cout << "\n" << report.ToText() << std::flush;
  }
  return report.passed() ? 0 : 1;
}
