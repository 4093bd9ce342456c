// A minimal Prometheus scrape for the soak: GET /metrics over a loopback TCP
// connection and the text exposition format parsed into samples.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qs::soak {

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The body of http://host:port/metrics; nullopt on any failure.
std::optional<std::string> FetchMetrics(const std::string& host, int port,
                                        std::chrono::milliseconds timeout);
std::vector<MetricSample> ParseMetrics(const std::string& text);

// Sum of `name` over the samples whose labels include `match`, grouped by
// the value of label `by` ("" = one group "").
std::map<std::string, double> SumBy(const std::vector<MetricSample>& samples,
                                    const std::string& name, const std::string& by,
                                    const std::map<std::string, std::string>& match = {});

}  // namespace qs::soak
