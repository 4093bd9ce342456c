// Outcomes of the soak's calls: counts by phase, category and gRPC code, the
// unexpected ones with their first message, wrong answers, and per-interval
// latency of the normal calls. Thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tools/soak/soak_options.h"

namespace qs::soak {

struct CallRecord {
  Category category = Category::kNormal;
  GarbageKind kind = GarbageKind::kWrongDtype;  // garbage only
  Phase phase = Phase::kWarmup;                 // when the call finished
  bool kserve = false;                          // ModelInfer (else Predict / generic)
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  bool expected = true;    // code within the category's / kind's expected set
  std::string bad_answer;  // OK, but the answer is wrong ("" = right or not checked)
  double ms = 0;
  int variant = 0;
  double logit_diff = 0;  // largest |logit - reference| of a checked answer
};

// gRPC code name, e.g. "DEADLINE_EXCEEDED".
std::string CodeName(grpc::StatusCode code);

// p-th percentile (0..100) of `v` (sorted in place); 0 when empty.
double Percentile(std::vector<double>& v, double p);

struct CodeCounts {
  std::map<std::string, int64_t> codes;  // code name -> calls
  int64_t total() const;
};

struct Problem {  // one kind of unexpected outcome
  int64_t count = 0;
  std::string first_message;
};

// What happened in one reporting interval.
struct IntervalStats {
  double t_s = 0;  // end, seconds since the load started
  Phase phase = Phase::kWarmup;
  int64_t requests = 0;  // calls finished, all categories
  std::map<std::string, int64_t> codes;  // all categories
  int64_t normal_ok = 0;
  double p50_ms = 0, p99_ms = 0;  // normal calls answered OK
  int64_t unexpected = 0;
  // Server process: medians of the interval's 1-second samples (-1 = unknown).
  int64_t rss_bytes = -1, threads = -1, fds = -1;
};

class Stats {
 public:
  explicit Stats(int variants) : max_diff_(static_cast<size_t>(variants), 0.0) {}
  void Record(const CallRecord& r);
  // Closes the current interval (t_s and the server sample are filled by the caller).
  IntervalStats TakeInterval();

  // Snapshots.
  std::map<std::string, CodeCounts> ByCategory(Phase phase) const;  // category name ->
  std::map<std::string, CodeCounts> ByGarbageKind() const;          // kind name -> (all phases)
  std::map<std::string, Problem> Unexpected() const;  // "phase/category[/kind] CODE" ->
  std::map<std::string, Problem> BadAnswers() const;  // "phase/category variant" ->
  int64_t UnexpectedCount() const;
  int64_t BadAnswerCount() const;
  std::vector<double> MaxLogitDiff() const;  // per variant
  // p50/p99 of all normal OK calls of `phase`.
  std::pair<double, double> Latency(Phase phase) const;
  int64_t Finished(Phase phase) const;

 private:
  mutable std::mutex mu_;
  std::array<std::array<CodeCounts, kCategoryCount>, 3> counts_;  // [phase][category]
  std::array<CodeCounts, kGarbageKindCount> garbage_;
  std::map<std::string, Problem> unexpected_;
  std::map<std::string, Problem> bad_answers_;
  std::array<std::vector<double>, 3> latencies_;  // normal OK, per phase
  std::vector<double> max_diff_;
  IntervalStats current_;
  std::vector<double> interval_latencies_;
};

}  // namespace qs::soak
