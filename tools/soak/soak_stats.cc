#include "tools/soak/soak_stats.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"

namespace qs::soak {

std::string CodeName(grpc::StatusCode code) {
  // gRPC's codes are numerically absl's (both follow google.rpc.Code).
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(std::ceil(p / 100.0 * v.size())) -
                                              (p > 0 ? 1 : 0));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int64_t CodeCounts::total() const {
  int64_t n = 0;
  for (const auto& [code, count] : codes) n += count;
  return n;
}

void Stats::Record(const CallRecord& r) {
  const std::string code = CodeName(r.code);
  const int phase = static_cast<int>(r.phase);
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[phase][static_cast<int>(r.category)].codes[code];
  if (r.category == Category::kGarbage) ++garbage_[static_cast<int>(r.kind)].codes[code];
  ++current_.requests;
  ++current_.codes[code];
  if (!r.expected) {
    ++current_.unexpected;
    std::string key = std::string(PhaseName(r.phase)) + "/" + CategoryName(r.category);
    if (r.category == Category::kGarbage) key += std::string("/") + GarbageKindName(r.kind);
    key += std::string(r.kserve ? " ModelInfer " : " Predict ") + code;
    Problem& p = unexpected_[key];
    if (p.count++ == 0) p.first_message = r.message;
  }
  if (!r.bad_answer.empty()) {
    ++current_.unexpected;
    std::string key = std::string(PhaseName(r.phase)) + "/" + CategoryName(r.category);
    if (r.category == Category::kGarbage) key += std::string("/") + GarbageKindName(r.kind);
    key += std::string(r.kserve ? " ModelInfer" : " Predict") + " variant #" +
           std::to_string(r.variant);
    Problem& p = bad_answers_[key];
    if (p.count++ == 0) p.first_message = r.bad_answer;
  }
  if (r.code == grpc::StatusCode::OK && r.category != Category::kGarbage) {
    max_diff_[r.variant] = std::max(max_diff_[r.variant], r.logit_diff);
  }
  if (r.code == grpc::StatusCode::OK && r.category == Category::kNormal) {
    latencies_[phase].push_back(r.ms);
    interval_latencies_.push_back(r.ms);
    ++current_.normal_ok;
  }
}

IntervalStats Stats::TakeInterval() {
  std::lock_guard<std::mutex> lock(mu_);
  IntervalStats out = std::move(current_);
  out.p50_ms = Percentile(interval_latencies_, 50);
  out.p99_ms = Percentile(interval_latencies_, 99);
  interval_latencies_.clear();
  current_ = IntervalStats();
  return out;
}

std::map<std::string, CodeCounts> Stats::ByCategory(Phase phase) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, CodeCounts> out;
  for (int c = 0; c < kCategoryCount; ++c) {
    out[CategoryName(static_cast<Category>(c))] = counts_[static_cast<int>(phase)][c];
  }
  return out;
}

std::map<std::string, CodeCounts> Stats::ByGarbageKind() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, CodeCounts> out;
  for (int k = 0; k < kGarbageKindCount; ++k) {
    out[GarbageKindName(static_cast<GarbageKind>(k))] = garbage_[k];
  }
  return out;
}

std::map<std::string, Problem> Stats::Unexpected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unexpected_;
}

std::map<std::string, Problem> Stats::BadAnswers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bad_answers_;
}

int64_t Stats::UnexpectedCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [key, p] : unexpected_) n += p.count;
  return n;
}

int64_t Stats::BadAnswerCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [key, p] : bad_answers_) n += p.count;
  return n;
}

std::vector<double> Stats::MaxLogitDiff() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_diff_;
}

std::pair<double, double> Stats::Latency(Phase phase) const {
  std::vector<double> v;
  {
    std::lock_guard<std::mutex> lock(mu_);
    v = latencies_[static_cast<int>(phase)];
  }
  const double p50 = Percentile(v, 50);
  return {p50, Percentile(v, 99)};
}

int64_t Stats::Finished(Phase phase) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const CodeCounts& c : counts_[static_cast<int>(phase)]) n += c.total();
  return n;
}

}  // namespace qs::soak
