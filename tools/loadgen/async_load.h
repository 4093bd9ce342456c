// The load generator's engine: Predict calls issued asynchronously on one
// gRPC CompletionQueue, either closed-loop (a fixed number of calls in
// flight, each completion starts the next) or open-loop (calls started on a
// fixed schedule of `rate_per_s`, at most `concurrency` in flight). In open
// loop a call's latency counts from its scheduled start, so a server that
// falls behind shows up as latency rather than as a slower schedule.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quantserve/v1/inference.grpc.pb.h"

namespace qs::loadgen {

// The prepared requests of one variant and its share of the traffic; calls
// of the variant cycle through `requests`.
struct VariantLoad {
  std::string variant;
  double weight = 1.0;
  int64_t rows_per_request = 1;
  std::vector<quantserve::v1::PredictRequest> requests;
};

struct PhaseOptions {
  int concurrency = 32;     // calls in flight at most
  double rate_per_s = 0.0;  // 0: closed loop
  double duration_s = 0.0;  // stop starting calls after this long ...
  int64_t max_requests = 0; // ... or after this many (> 0 wins)
  int64_t timeout_ms = 10000;
  uint32_t seed = 1;
};

// Outcome of the calls of one variant.
struct CallStats {
  int64_t requests = 0;  // completed calls, failed ones included
  int64_t ok = 0;
  int64_t rows = 0;      // rows of the successful calls
  std::map<std::string, int64_t> errors;             // by gRPC code name
  std::map<std::string, std::string> first_error;    // code -> first message
  std::vector<double> latencies_ms;                  // successful calls only
  void Merge(const CallStats& other);
};

struct PhaseResult {
  std::vector<CallStats> variants;  // parallel to the VariantLoad list
  double seconds = 0.0;             // first start to last completion
  int64_t late_starts = 0;          // open loop: calls started > 1 ms after schedule
};

// Runs one phase (a warm-up or the measurement) against `stub`. Never fails
// as a whole: call failures are counted by code; an OK reply whose first
// output does not have `rows_per_request` rows counts as "BAD_RESPONSE".
PhaseResult RunPhase(quantserve::v1::InferenceService::Stub* stub,
                     const std::vector<VariantLoad>& loads, const PhaseOptions& options);

}  // namespace qs::loadgen
