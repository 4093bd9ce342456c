#include "tools/client/client_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace qs::client {
namespace {

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Percent(int64_t num, int64_t den) {
  return den == 0 ? "      -" : Format("%6.2f %%", 100.0 * num / den);
}

std::string ClassLabel(int64_t id, const std::vector<std::string>& names) {
  std::string s = std::to_string(id);
  if (id >= 0 && id < static_cast<int64_t>(names.size())) s += " " + names[id];
  return s;
}

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, double(values.size()))) - 1;
  return values[i];
}

Summary Summarize(const std::string& model, const std::string& variant,
                  const LoadResult& run, const Dataset& data) {
  Summary s;
  s.model = model;
  s.variant = run.served_variant.empty() ? variant : run.served_variant;
  s.requests = run.requests;
  s.images = run.images;
  s.answered = run.answered;
  s.errors = run.error_count();
  const bool labeled = !data.labels.empty();
  const int64_t* labels = labeled ? data.labels.data<int64_t>() : nullptr;
  auto grow = [&](int64_t id) {
    if (id >= 0 && id >= static_cast<int64_t>(s.classes.size())) s.classes.resize(id + 1);
  };
  int64_t scored = 0;
  for (size_t i = 0; i < run.predictions.size(); ++i) {
    const int32_t pred = run.predictions[i];
    if (pred < 0) continue;  // its request failed
    grow(pred);
    ++s.classes[pred].predicted;
    if (!labeled) continue;
    const int64_t label = labels[i];
    if (label < 0) continue;
    grow(label);
    ++scored;
    ++s.classes[label].images;
    if (pred == label) {
      ++s.classes[label].correct;
      ++s.correct;
    }
  }
  if (labeled && scored > 0) s.accuracy = static_cast<double>(s.correct) / scored;
  s.throughput_per_s = run.seconds > 0 ? s.answered / run.seconds : 0.0;
  s.p50_ms = Percentile(run.latencies_ms, 50);
  s.p99_ms = Percentile(run.latencies_ms, 99);
  return s;
}

nlohmann::json SummaryJson(const Summary& s, const LoadResult& run) {
  nlohmann::json j;
  j["model"] = s.model;
  j["variant"] = s.variant;
  j["requests"] = s.requests;
  j["images"] = s.images;
  j["accuracy"] = s.accuracy ? nlohmann::json(*s.accuracy) : nlohmann::json(nullptr);
  j["throughput_per_s"] = s.throughput_per_s;
  j["p50_ms"] = s.p50_ms;
  j["p99_ms"] = s.p99_ms;
  j["errors"] = s.errors;
  j["feedback_sent"] = run.feedback_sent;
  j["errors_by_code"] = nlohmann::json::object();
  for (const auto& [code, count] : run.errors) j["errors_by_code"][code] = count;
  return j;
}

void PrintReport(std::ostream& os, const Summary& s, const LoadResult& run,
                 const Dataset& data, const std::vector<std::string>& class_names,
                 int64_t show) {
  const bool labeled = !data.labels.empty();
  const int64_t shown = std::min<int64_t>(show, static_cast<int64_t>(run.predictions.size()));
  if (shown > 0) os << "first " << shown << " predictions:\n";
  for (int64_t i = 0; i < shown; ++i) {
    const int32_t pred = run.predictions[i];
    const std::string shown_pred = pred < 0 ? "(failed)" : ClassLabel(pred, class_names);
    os << "  #" << Pad(std::to_string(i), 5) << (labeled ? Pad(shown_pred, 16) : shown_pred);
    if (labeled) {
      const int64_t label = data.labels.data<int64_t>()[i];
      os << "label " << ClassLabel(label, class_names) << (pred == label ? "" : "  ✗");
    }
    os << "\n";
  }
  size_t width = 7;
  for (size_t c = 0; c < s.classes.size(); ++c)
    width = std::max(width, ClassLabel(c, class_names).size() + 2);
  os << Pad("class", width)
     << (labeled ? "  images  correct  accuracy" : "") << "  predicted\n";
  for (size_t c = 0; c < s.classes.size(); ++c) {
    const ClassStats& k = s.classes[c];
    char row[96];
    if (labeled) {
      std::snprintf(row, sizeof(row), "%8lld %8lld  %s  %9lld", (long long)k.images,
                    (long long)k.correct, Percent(k.correct, k.images).c_str(),
                    (long long)k.predicted);
    } else {
      std::snprintf(row, sizeof(row), "%11lld", (long long)k.predicted);
    }
    os << Pad(ClassLabel(c, class_names), width) << row << "\n";
  }
  if (labeled) {
    int64_t scored = 0;
    for (const ClassStats& k : s.classes) scored += k.images;
    char row[96];
    std::snprintf(row, sizeof(row), "%8lld %8lld  %s", (long long)scored,
                  (long long)s.correct, Percent(s.correct, scored).c_str());
    os << Pad("total", width) << row << "\n";
  }
  os << "model " << s.model << ", variant " << s.variant << ": " << s.images << " images in "
     << s.requests << (s.requests == 1 ? " request, " : " requests, ") << s.errors
     << " failed\n"
     << "accuracy "
     << (s.accuracy ? Format("%.4f", *s.accuracy)
                    : labeled ? "n/a (no answers)" : "n/a (no labels)")
     << ", throughput " << Format("%.1f", s.throughput_per_s) << " images/s, latency p50 "
     << Format("%.2f", s.p50_ms) << " ms, p99 " << Format("%.2f", s.p99_ms) << " ms\n";
}

void PrintErrors(std::ostream& os, const LoadResult& run) {
  for (const auto& [code, count] : run.errors) {
    os << "quantserve-client: " << count << " request(s) failed with " << code << ": "
       << run.first_error.at(code) << "\n";
  }
}

}  // namespace qs::client
