#include "tools/loadgen/loadgen_options.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace qs::loadgen {

absl::StatusOr<std::vector<std::pair<std::string, double>>> ParseVariantMix(
    const std::string& text) {
  std::vector<std::pair<std::string, double>> mix;
  std::set<std::string> seen;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::vector<std::string> parts = absl::StrSplit(item, absl::MaxSplits('=', 1));
    double weight = 1.0;
    if (parts[0].empty()) {
      return absl::InvalidArgumentError("--variant: empty variant name in '" + text + "'");
    }
    if (parts.size() == 2 && (!absl::SimpleAtod(parts[1], &weight) || !(weight > 0))) {
      return absl::InvalidArgumentError("--variant: weight of '" + parts[0] +
                                        "' must be a number > 0, got '" + parts[1] + "'");
    }
    if (!seen.insert(parts[0]).second) {
      return absl::InvalidArgumentError("--variant: '" + parts[0] + "' given twice");
    }
    mix.emplace_back(parts[0], weight);
  }
  return mix;
}

int ParseLoadgenOptions(int argc, char** argv, LoadgenOptions* o) {
  CLI::App app{"quantserve-loadgen: asynchronous gRPC load on a quantserve.v1 server's Predict; "
               "prints throughput, latency percentiles and errors by status code"};
  std::string mix;
  app.add_option("--address", o->address, "Server address HOST:PORT")->required();
  app.add_option("--model", o->model, "Model name")->required();
  app.add_option("--variant", mix,
                 "Variant mix: NAME[=WEIGHT],... e.g. fp32=1,w8a8=3 (default: the model's "
                 "default variant)");
  app.add_option("--concurrency", o->concurrency, "Calls in flight at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--rate", o->rate_per_s,
                 "Open loop: start calls at this many per second (0 = closed loop: every "
                 "completion starts the next call)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  auto* duration = app.add_option("--duration-s", o->duration_s, "Seconds of calls to start")
                       ->capture_default_str()
                       ->check(CLI::PositiveNumber);
  app.add_option("--requests", o->requests, "Number of calls instead of a duration")
      ->check(CLI::PositiveNumber)
      ->excludes(duration);
  app.add_option("--warmup-requests", o->warmup_requests,
                 "Closed-loop calls before the measurement, not counted")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", o->batch, "Rows per request")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--npy", o->npy,
                 ".npy of input rows [N, ...] for single-input models, cycled (integer dtypes "
                 "scaled by 1/255); default: random rows, floats uniform in [0, 1)")
      ->check(CLI::ExistingFile);
  app.add_option("--timeout-ms", o->timeout_ms, "Deadline of each call")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{86400000}));
  app.add_option("--seed", o->seed, "Seed of the variant choice and random inputs")
      ->capture_default_str();
  app.add_flag("--json", o->json, "Print one JSON object (keys in docs/BENCHMARKS.md)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; every usage error is 2
  }
  if (!mix.empty()) {
    auto parsed = ParseVariantMix(mix);
    if (!parsed.ok()) {
      std::cerr << "quantserve-loadgen: " << parsed.status().message() << "\n";
      return 2;
    }
    o->variant_mix = *parsed;
  }
  return -1;
}

}  // namespace qs::loadgen
