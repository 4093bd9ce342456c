// Sends a dataset to a quantserve.v1 server as Predict requests: `batch`
// samples per request (one FP32 raw_data tensor), `concurrency` requests in
// flight (one blocking stub call per worker thread, sharing one channel).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/data/dataset.h"
#include "quantserve/v1/inference.grpc.pb.h"

namespace qs::client {

struct LoadOptions {
  std::string model;
  std::string variant;     // "" = the model's default
  std::string input_name;  // the model's (only) input
  int64_t batch = 16;
  int concurrency = 4;
  int64_t timeout_ms = 10000;  // per-request deadline
  uint32_t top_k = 1;
  // Request ids are id_prefix + the request's index; unique per run so that
  // concurrent clients' Feedback calls do not collide.
  std::string id_prefix;
  // After each answered request, report its true labels with Feedback (the
  // dataset must be labelled); failures count as "FEEDBACK_<CODE>".
  bool feedback = false;
};

struct LoadResult {
  int64_t requests = 0;  // requests sent (failed ones included)
  int64_t images = 0;    // samples sent
  int64_t answered = 0;  // samples with a prediction
  // Top-1 class per sample; -1 where its request failed.
  std::vector<int32_t> predictions;
  std::vector<double> latencies_ms;  // of successful requests, in send order per worker
  // Failed requests by gRPC code name ("NOT_FOUND", ...), plus "BAD_RESPONSE"
  // for an OK reply without one top-k entry per sample.
  std::map<std::string, int64_t> errors;
  std::map<std::string, std::string> first_error;  // code -> first message
  int64_t feedback_sent = 0;    // successful Feedback calls
  std::string served_variant;  // as reported by the server
  double seconds = 0.0;        // wall time of the whole run
  int64_t error_count() const;
};

// gRPC code as its canonical name, e.g. "DEADLINE_EXCEEDED".
std::string StatusCodeName(grpc::StatusCode code);

// GetModelMetadata of `model`, with a deadline of at least 10 s (connecting
// happens here too). The error message reads
// "GetModelMetadata('<model>') at <address>: <CODE>: <server's message>".
absl::StatusOr<quantserve::v1::ModelMetadata> FetchModelMetadata(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& address,
    const std::string& model, int64_t timeout_ms);

// Runs every sample of `data` through the server. Never fails as a whole:
// request failures are counted in LoadResult::errors.
LoadResult RunLoad(const std::shared_ptr<grpc::Channel>& channel, const Dataset& data,
                   const LoadOptions& options);

}  // namespace qs::client
