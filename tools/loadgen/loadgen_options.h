// quantserve-loadgen's command line (CLI11) as a plain struct.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace qs::loadgen {

struct LoadgenOptions {
  std::string address;
  std::string model;
  // (variant, weight); one entry {"", 1} = the model's default variant.
  std::vector<std::pair<std::string, double>> variant_mix = {{"", 1.0}};
  int concurrency = 32;
  double rate_per_s = 0.0;  // 0: closed loop
  double duration_s = 10.0;
  int64_t requests = 0;     // > 0 replaces --duration-s
  int64_t warmup_requests = 0;
  int64_t batch = 1;        // rows per request
  std::string npy;          // input rows; empty: random
  int64_t timeout_ms = 10000;
  uint32_t seed = 1;
  bool json = false;
};

// "fp32=1,w8a8=3" or "w8a8" (weight 1 each). Weights are > 0; names unique.
absl::StatusOr<std::vector<std::pair<std::string, double>>> ParseVariantMix(
    const std::string& text);

// Parses argv; on --help or a usage error returns the process exit code
// (0 or 2) after printing, else nullopt-like -1 with `options` filled.
int ParseLoadgenOptions(int argc, char** argv, LoadgenOptions* options);

}  // namespace qs::loadgen
