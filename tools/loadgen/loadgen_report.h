// What quantserve-loadgen prints: throughput, latency percentiles and
// errors by status code, in total and per variant, as text or one JSON
// object. The JSON keys are a contract (docs/BENCHMARKS.md#quantserve-loadgen).
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "tools/loadgen/async_load.h"
#include "tools/loadgen/loadgen_options.h"

namespace qs::loadgen {

struct LoadgenRun {
  LoadgenOptions options;
  std::vector<std::string> variants;  // served names, parallel to phase.variants
  PhaseResult phase;
};

// {"address","model","mode","concurrency","target_rate_per_s","batch",
//  "seconds","late_starts", <stats>, "variants":{NAME:{"weight", <stats>}}}
// with <stats> = "requests","ok","errors","errors_by_code","rows",
// "requests_per_s","throughput_per_s","mean_ms","p50_ms","p90_ms","p99_ms",
// "max_ms" (latencies of successful calls; 0 when there are none).
nlohmann::json RunJson(const LoadgenRun& run);

void PrintRun(std::ostream& os, const LoadgenRun& run);
// Each failing code's count and first message.
void PrintErrors(std::ostream& os, const LoadgenRun& run);

}  // namespace qs::loadgen
