#include "tools/soak/soak_report.h"

#include <cstdio>
#include <set>
#include <sstream>

namespace qs::soak {

namespace {

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Mb(int64_t bytes) {
  return bytes < 0 ? "?" : Format("%.1f MB", static_cast<double>(bytes) / (1 << 20));
}

nlohmann::json CountsJson(const std::map<std::string, CodeCounts>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, c] : m) {
    if (c.total() == 0) continue;
    j[name] = {{"requests", c.total()}, {"codes", c.codes}};
  }
  return j;
}

nlohmann::json ProblemsJson(const std::map<std::string, Problem>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, p] : m) j[key] = {{"count", p.count}, {"first_message", p.first_message}};
  return j;
}

// A table of code counts, one row per entry of `m`, columns = codes seen.
void CountsTable(std::ostringstream& out, const std::map<std::string, CodeCounts>& m) {
  std::set<std::string> codes;
  for (const auto& [name, c] : m) {
    for (const auto& [code, n] : c.codes) codes.insert(code);
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "  %-20s %9s", "", "calls");
  out << buf;
  for (const auto& code : codes) out << " " << code;
  out << "\n";
  for (const auto& [name, c] : m) {
    if (c.total() == 0) continue;
    std::snprintf(buf, sizeof(buf), "  %-20s %9lld", name.c_str(),
                  static_cast<long long>(c.total()));
    out << buf;
    for (const auto& code : codes) {
      auto it = c.codes.find(code);
      const std::string n = it == c.codes.end() ? "-" : std::to_string(it->second);
      out << " " << std::string(code.size() > n.size() ? code.size() - n.size() : 0, ' ') << n;
    }
    out << "\n";
  }
}

}  // namespace

std::string IntervalLine(const IntervalStats& s) {
  std::ostringstream out;
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "[%6.0f s %-8s] calls %7lld  normal OK %7lld  p50 %7.2f ms  p99 %7.2f ms  "
                "rss %s  threads %lld  fds %lld  unexpected %lld ",
                s.t_s, PhaseName(s.phase), static_cast<long long>(s.requests),
                static_cast<long long>(s.normal_ok), s.p50_ms, s.p99_ms, Mb(s.rss_bytes).c_str(),
                static_cast<long long>(s.threads), static_cast<long long>(s.fds),
                static_cast<long long>(s.unexpected));
  out << buf << "|";
  for (const auto& [code, n] : s.codes) out << " " << code << ":" << n;
  return out.str();
}

nlohmann::json Report::ToJson() const {
  nlohmann::json j;
  j["passed"] = passed();
  j["failures"] = failures;
  j["target"] = target;
  if (!server_log.empty()) j["server_log"] = server_log;
  j["model"] = model;
  j["variants"] = variants;
  nlohmann::json clients;
  for (int c = 0; c < kCategoryCount && c < static_cast<int>(clients_per_category.size()); ++c) {
    clients[CategoryName(static_cast<Category>(c))] = clients_per_category[c];
  }
  j["clients"] = clients;
  j["connections"] = connections;
  j["warmup_s"] = warmup_s;
  j["duration_s"] = duration_s;
  nlohmann::json phases;
  for (const auto& [phase, m] : by_phase) phases[phase] = CountsJson(m);
  j["phases"] = phases;
  j["garbage_kinds"] = CountsJson(garbage_kinds);
  j["unexpected"] = ProblemsJson(unexpected);
  j["bad_answers"] = ProblemsJson(bad_answers);
  j["latency_ms"] = {{"p50", p50_ms}, {"p99", p99_ms}};
  nlohmann::json diff;
  for (size_t v = 0; v < variants.size() && v < max_logit_diff.size(); ++v) {
    diff[variants[v]] = max_logit_diff[v];
  }
  j["max_logit_diff"] = diff;
  nlohmann::json iv = nlohmann::json::array();
  for (const IntervalStats& s : intervals) {
    iv.push_back({{"t_s", s.t_s}, {"phase", PhaseName(s.phase)}, {"requests", s.requests},
                  {"normal_ok", s.normal_ok}, {"p50_ms", s.p50_ms}, {"p99_ms", s.p99_ms},
                  {"unexpected", s.unexpected}, {"codes", s.codes}, {"rss_bytes", s.rss_bytes},
                  {"threads", s.threads}, {"fds", s.fds}});
  }
  j["intervals"] = iv;
  j["rss"] = {{"start_bytes", rss_start}, {"end_bytes", rss_end}, {"peak_bytes", rss_peak},
              {"growth_pct", rss_growth_pct}, {"limit_pct", rss_limit_pct}};
  j["threads"] = {{"start", threads_start}, {"end", threads_end}};
  j["fds"] = {{"start", fds_start}, {"end", fds_end}};
  j["server_alive"] = server_alive;
  if (!server_death.empty()) j["server_death"] = server_death;
  if (!server_codes.empty()) {
    j["server_metrics"] = {{"requests_by_code", server_codes},
                           {"requests_by_model_label", server_models},
                           {"inflight_after_load", server_inflight_after},
                           {"drift_enqueued", drift_enqueued},
                           {"drift_dropped", drift_dropped},
                           {"drift_errors", drift_errors}};
  }
  if (shutdown.ran) {
    j["shutdown"] = {{"in_flight_at_sigterm", shutdown.in_flight_at_sigterm},
                     {"exit", shutdown.exit},
                     {"seconds_to_exit", shutdown.seconds_to_exit},
                     {"hung_calls", shutdown.hung_calls},
                     {"codes", CountsJson(shutdown.codes)}};
  }
  return j;
}

std::string Report::ToText() const {
  std::ostringstream out;
  out << "quantserve-soak: " << target << "\n  model " << model << ", variants";
  for (const auto& v : variants) out << " " << v;
  out << "; clients";
  for (int c = 0; c < kCategoryCount && c < static_cast<int>(clients_per_category.size()); ++c) {
    out << " " << CategoryName(static_cast<Category>(c)) << " " << clients_per_category[c];
  }
  out << "; " << connections << " connections; warm-up " << warmup_s << " s, soak "
      << duration_s << " s\n";
  for (const auto& [phase, m] : by_phase) {
    out << "\ncalls in phase " << phase << ", by client category and gRPC code:\n";
    CountsTable(out, m);
  }
  out << "\ngarbage kinds (all phases):\n";
  CountsTable(out, garbage_kinds);
  out << "\nnormal calls answered OK, soak phase: p50 " << Format("%.2f", p50_ms) << " ms, p99 "
      << Format("%.2f", p99_ms) << " ms\n";
  out << "largest |logit - reference| of a checked answer:";
  for (size_t v = 0; v < variants.size() && v < max_logit_diff.size(); ++v) {
    out << " " << variants[v] << " " << Format("%.2g", max_logit_diff[v]);
  }
  out << "\nserver RSS (median of 1 s samples): first soak interval " << Mb(rss_start)
      << ", last " << Mb(rss_end) << ", peak " << Mb(rss_peak) << "; growth "
      << Format("%+.2f", rss_growth_pct) << " % (limit " << Format("%.1f", rss_limit_pct)
      << " %); threads " << threads_start << " -> " << threads_end << "; open fds " << fds_start
      << " -> " << fds_end << "\n";
  out << "server alive at the end of the load: " << (server_alive ? "yes" : "NO") << "\n";
  if (!server_death.empty()) out << server_death << "\n";
  if (!server_codes.empty()) {
    out << "server /metrics after the load: quantserve_requests_total by code:";
    for (const auto& [code, n] : server_codes) out << " " << code << ":" << Format("%.0f", n);
    out << "; by model label:";
    for (const auto& [m, n] : server_models) out << " " << m << ":" << Format("%.0f", n);
    out << "; in flight " << Format("%.0f", server_inflight_after) << "; drift enqueued "
        << Format("%.0f", drift_enqueued) << ", dropped " << Format("%.0f", drift_dropped)
        << ", errors " << Format("%.0f", drift_errors) << "\n";
  }
  if (shutdown.ran) {
    out << "\nshutdown under load: SIGTERM with " << shutdown.in_flight_at_sigterm
        << " calls in flight; " << shutdown.exit << " after "
        << Format("%.2f", shutdown.seconds_to_exit) << " s; calls hung: " << shutdown.hung_calls
        << "\n";
    CountsTable(out, shutdown.codes);
  }
  if (!unexpected.empty()) {
    out << "\nunexpected codes:\n";
    for (const auto& [key, p] : unexpected) {
      out << "  " << key << " x" << p.count << ": " << p.first_message << "\n";
    }
  }
  if (!bad_answers.empty()) {
    out << "\nwrong answers:\n";
    for (const auto& [key, p] : bad_answers) {
      out << "  " << key << " x" << p.count << ": " << p.first_message << "\n";
    }
  }
  out << "\n" << (passed() ? "PASS" : "FAIL") << "\n";
  for (const auto& f : failures) out << "  - " << f << "\n";
  return out.str();
}

}  // namespace qs::soak
