// What quantserve-client prints: accuracy (total and per class), throughput
// and latency percentiles of one run, as a table or as one JSON object.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "tools/client/load_runner.h"

namespace qs::client {

struct ClassStats {
  int64_t images = 0;     // samples with this label (answered ones)
  int64_t correct = 0;    // ... predicted as this label
  int64_t predicted = 0;  // samples predicted as this class
};

struct Summary {
  std::string model;
  std::string variant;
  int64_t requests = 0;
  int64_t images = 0;
  int64_t answered = 0;
  int64_t correct = 0;
  std::optional<double> accuracy;  // correct / answered; nullopt without labels
  std::vector<ClassStats> classes;  // indexed by class id
  double throughput_per_s = 0.0;    // images / wall seconds
  double p50_ms = 0.0;
  double p99_ms = 0.0;
  int64_t errors = 0;
};

// Nearest-rank percentile (p in [0, 100]) of `values`; 0 when empty.
double Percentile(std::vector<double> values, double p);

Summary Summarize(const std::string& model, const std::string& variant,
                  const LoadResult& run, const Dataset& data);

// {"model","variant","requests","images","accuracy","throughput_per_s",
//  "p50_ms","p99_ms","errors","errors_by_code"}; accuracy is null without labels.
nlohmann::json SummaryJson(const Summary& s, const LoadResult& run);

// The human-readable report. `class_names` may be empty (ids only); `show`
// is how many leading predictions to list.
void PrintReport(std::ostream& os, const Summary& s, const LoadResult& run,
                 const Dataset& data, const std::vector<std::string>& class_names,
                 int64_t show);

// Failed requests by code, with each code's first message (for stderr).
void PrintErrors(std::ostream& os, const LoadResult& run);

}  // namespace qs::client
