// One inference call (quantserve Predict, KServe ModelInfer) served through
// gRPC's callback API. No thread is held while the request waits in its
// batching queue or runs: the handler validates the request and hands it to
// the model's batcher, whose worker encodes the answer and finishes the
// call. (With the synchronous API every waiting call held a thread, and each
// answer crossed poller -> handler -> batcher -> handler threads: on the
// tiny Fashion-MNIST CNN that was ~250 us of server CPU per call.)
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/model_registry.h"

namespace qs {

// What a handler resolved from a request before it runs.
struct PreparedRun {
  std::shared_ptr<const ServedModel> model;
  int variant = -1;            // index into model->built.variants
  std::vector<Tensor> inputs;  // graph-input order, validated
  std::string request_id;      // for Feedback; may be empty
  // Fills the call's response from the outputs; runs on a batcher thread
  // while the call still holds the model. Must not own the model.
  std::function<grpc::Status(const std::vector<Tensor>& outputs)> respond;
};

// Validates a request into `run`, naming the model in `metrics` as soon as
// it is known; a status other than OK answers the call.
using PrepareRun = std::function<grpc::Status(RequestMetrics& metrics, PreparedRun& run)>;

// Serves one call: admission through the registry's ServingGate
// (UNAVAILABLE while draining, RESOURCE_EXHAUSTED beyond the call limit),
// `prepare`, then the variant's batcher; cancellation takes a still-queued
// request back, an expired deadline answers DEADLINE_EXCEEDED; `metrics`
// (may be null) counts the outcome. Returns the call's reactor.
grpc::ServerUnaryReactor* StartInferenceCall(grpc::CallbackServerContext* ctx,
                                             const ModelRegistry& registry,
                                             const ServerMetrics* metrics,
                                             const PrepareRun& prepare);

}  // namespace qs
