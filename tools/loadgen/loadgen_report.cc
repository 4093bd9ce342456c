#include "tools/loadgen/loadgen_report.h"

#include <algorithm>
#include <cstdio>

#include "tools/client/client_report.h"

namespace qs::loadgen {
namespace {

int64_t ErrorCount(const CallStats& s) {
  int64_t n = 0;
  for (const auto& [code, count] : s.errors) n += count;
  return n;
}

nlohmann::json StatsJson(const CallStats& s, double seconds) {
  nlohmann::json j;
  j["requests"] = s.requests;
  j["ok"] = s.ok;
  j["errors"] = ErrorCount(s);
  j["errors_by_code"] = nlohmann::json::object();
  for (const auto& [code, n] : s.errors) j["errors_by_code"][code] = n;
  j["rows"] = s.rows;
  j["requests_per_s"] = seconds > 0 ? static_cast<double>(s.ok) / seconds : 0.0;
  j["throughput_per_s"] = seconds > 0 ? static_cast<double>(s.rows) / seconds : 0.0;
  double mean = 0;
  for (double ms : s.latencies_ms) mean += ms;
  j["mean_ms"] = s.latencies_ms.empty() ? 0.0 : mean / static_cast<double>(s.latencies_ms.size());
  j["p50_ms"] = client::Percentile(s.latencies_ms, 50);
  j["p90_ms"] = client::Percentile(s.latencies_ms, 90);
  j["p99_ms"] = client::Percentile(s.latencies_ms, 99);
  j["max_ms"] = client::Percentile(s.latencies_ms, 100);
  return j;
}

CallStats Total(const PhaseResult& phase) {
  CallStats total;
  for (const CallStats& v : phase.variants) total.Merge(v);
  return total;
}

void PrintRow(std::ostream& os, const std::string& label, const nlohmann::json& j) {
  char line[256];
  std::snprintf(line, sizeof(line), "%-12s %9lld %7lld %10.1f %11.1f %8.3f %8.3f %8.3f %8.3f\n",
                label.c_str(), static_cast<long long>(j["requests"].get<int64_t>()),
                static_cast<long long>(j["errors"].get<int64_t>()),
                j["requests_per_s"].get<double>(), j["throughput_per_s"].get<double>(),
                j["p50_ms"].get<double>(), j["p90_ms"].get<double>(), j["p99_ms"].get<double>(),
                j["max_ms"].get<double>());
  os << line;
}

}  // namespace

nlohmann::json RunJson(const LoadgenRun& run) {
  const LoadgenOptions& o = run.options;
  nlohmann::json j = StatsJson(Total(run.phase), run.phase.seconds);
  j["address"] = o.address;
  j["model"] = o.model;
  j["mode"] = o.rate_per_s > 0 ? "open" : "closed";
  j["concurrency"] = o.concurrency;
  j["target_rate_per_s"] = o.rate_per_s > 0 ? nlohmann::json(o.rate_per_s) : nlohmann::json();
  j["batch"] = o.batch;
  j["seconds"] = run.phase.seconds;
  j["late_starts"] = run.phase.late_starts;
  j["variants"] = nlohmann::json::object();
  for (size_t i = 0; i < run.variants.size(); ++i) {
    nlohmann::json v = StatsJson(run.phase.variants[i], run.phase.seconds);
    v["weight"] = o.variant_mix[i].second;
    j["variants"][run.variants[i]] = v;
  }
  return j;
}

void PrintRun(std::ostream& os, const LoadgenRun& run) {
  const nlohmann::json j = RunJson(run);
  const LoadgenOptions& o = run.options;
  os << o.model << " at " << o.address << ": "
     << (o.rate_per_s > 0 ? "open loop, " + std::to_string(o.rate_per_s) + " calls/s target, "
                          : std::string("closed loop, "))
     << o.concurrency << " in flight, " << o.batch << " row(s) per call, "
     << j["seconds"].get<double>() << " s\n";
  os << "variant       requests  errors    calls/s      rows/s   p50 ms   p90 ms   p99 ms   "
        "max ms\n";
  for (size_t i = 0; i < run.variants.size(); ++i) {
    PrintRow(os, run.variants[i], j["variants"][run.variants[i]]);
  }
  PrintRow(os, "total", j);
  if (run.phase.late_starts > 0) {
    os << run.phase.late_starts << " call(s) started more than 1 ms late (client or "
       << "--concurrency limit)\n";
  }
}

void PrintErrors(std::ostream& os, const LoadgenRun& run) {
  const CallStats total = Total(run.phase);
  for (const auto& [code, n] : total.errors) {
    os << "quantserve-loadgen: " << n << " call(s) failed with " << code << ": "
       << total.first_error.at(code) << "\n";
  }
}

}  // namespace qs::loadgen
