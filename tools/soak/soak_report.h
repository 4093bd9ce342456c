// Everything a soak run found, and how it is printed: a human-readable
// summary or one JSON object (--json). `failures` empty = the soak passed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/soak/soak_options.h"
#include "tools/soak/soak_stats.h"

namespace qs::soak {

struct ShutdownResult {
  bool ran = false;
  int64_t in_flight_at_sigterm = 0;
  std::string exit;           // DescribeWaitStatus, or "still running"
  double seconds_to_exit = -1;
  int64_t hung_calls = 0;     // still in flight after the server exited
  std::map<std::string, CodeCounts> codes;  // by category, calls finished after SIGTERM
};

struct Report {
  // Set-up.
  std::string target;  // "serve <binary> --config <file>" or the address
  std::string server_log;
  std::string model;
  std::vector<std::string> variants;
  std::vector<int> clients_per_category;
  int connections = 0;
  double warmup_s = 0, duration_s = 0;

  // Results.
  // (phase, category -> codes), in phase order.
  std::vector<std::pair<std::string, std::map<std::string, CodeCounts>>> by_phase;
  std::map<std::string, CodeCounts> garbage_kinds;
  std::map<std::string, Problem> unexpected;
  std::map<std::string, Problem> bad_answers;
  std::vector<IntervalStats> intervals;
  double p50_ms = 0, p99_ms = 0;  // soak phase, normal OK calls
  std::vector<double> max_logit_diff;  // per variant
  // Bytes, -1 = unknown: medians of the first and last soak interval's
  // 1-second samples, and the largest sample of the soak phase.
  int64_t rss_start = -1, rss_end = -1, rss_peak = -1;
  double rss_growth_pct = 0;
  double rss_limit_pct = 5;
  int64_t threads_start = -1, threads_end = -1, fds_start = -1, fds_end = -1;
  bool server_alive = true;
  std::string server_death;  // how it died, with its log tail
  // From /metrics after the load stopped, counted since the load started
  // (empty when not scraped).
  std::map<std::string, double> server_codes;
  std::map<std::string, double> server_models;  // model label -> requests
  double server_inflight_after = -1;
  double drift_enqueued = -1, drift_dropped = -1, drift_errors = -1;
  ShutdownResult shutdown;

  std::vector<std::string> failures;
  bool passed() const { return failures.empty(); }

  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// One progress line for an interval.
std::string IntervalLine(const IntervalStats& s);

}  // namespace qs::soak
