#include "tools/loadgen/async_load.h"

#include <chrono>
#include <random>

#include "tools/client/load_runner.h"

namespace qs::loadgen {
namespace {

namespace v1 = quantserve::v1;
using Clock = std::chrono::steady_clock;

struct Call {
  grpc::ClientContext context;
  v1::PredictResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PredictResponse>> reader;
  Clock::time_point start;
  size_t variant = 0;
};

void Record(const Call& call, const VariantLoad& load, CallStats* stats) {
  ++stats->requests;
  std::string code, message;
  if (!call.status.ok()) {
    code = client::StatusCodeName(call.status.error_code());
    message = call.status.error_message();
  } else if (call.response.outputs_size() == 0 || call.response.outputs(0).shape_size() == 0 ||
             call.response.outputs(0).shape(0) != load.rows_per_request) {
    code = "BAD_RESPONSE";
    message = "expected a first output with " + std::to_string(load.rows_per_request) + " rows";
  }
  if (!code.empty()) {
    if (stats->errors[code]++ == 0) stats->first_error[code] = message;
    return;
  }
  ++stats->ok;
  stats->rows += load.rows_per_request;
  stats->latencies_ms.push_back(
      std::chrono::duration<double, std::milli>(Clock::now() - call.start).count());
}

}  // namespace

void CallStats::Merge(const CallStats& other) {
  requests += other.requests;
  ok += other.ok;
  rows += other.rows;
  for (const auto& [code, n] : other.errors) errors[code] += n;
  for (const auto& [code, m] : other.first_error) first_error.emplace(code, m);
  latencies_ms.insert(latencies_ms.end(), other.latencies_ms.begin(), other.latencies_ms.end());
}

PhaseResult RunPhase(v1::InferenceService::Stub* stub, const std::vector<VariantLoad>& loads,
                     const PhaseOptions& options) {
  PhaseResult result;
  result.variants.resize(loads.size());
  std::vector<double> weights;
  for (const VariantLoad& l : loads) weights.push_back(l.weight);
  std::mt19937 rng(options.seed);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  std::vector<size_t> next_message(loads.size(), 0);

  grpc::CompletionQueue cq;
  const bool open_loop = options.rate_per_s > 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(options.duration_s));
  const auto interval = open_loop ? std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(1.0 / options.rate_per_s))
                                  : Clock::duration::zero();
  int64_t started = 0;
  int in_flight = 0;
  auto last_done = start;

  // When the next call is due (closed loop: now).
  auto scheduled = [&](Clock::time_point now) { return open_loop ? start + started * interval : now; };
  auto more = [&](Clock::time_point now) {
    if (options.max_requests > 0) return started < options.max_requests;
    return scheduled(now) < end && (open_loop || now < end);
  };
  auto issue = [&](Clock::time_point due, Clock::time_point now) {
    auto* call = new Call;
    call->variant = pick(rng);
    const VariantLoad& load = loads[call->variant];
    const auto& request = load.requests[next_message[call->variant]++ % load.requests.size()];
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(options.timeout_ms));
    call->start = due;
    if (open_loop && now - due > std::chrono::milliseconds(1)) ++result.late_starts;
    call->reader = stub->PrepareAsyncPredict(&call->context, request, &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
    ++started;
    ++in_flight;
  };

  while (true) {
    auto now = Clock::now();
    while (in_flight < options.concurrency && more(now) && scheduled(now) <= now) {
      issue(scheduled(now), now);
      now = Clock::now();
    }
    if (in_flight == 0 && !more(now)) break;
    // Wake for the next completion, or for the next scheduled start.
    auto wake = now + std::chrono::milliseconds(100);
    if (open_loop && in_flight < options.concurrency && more(now)) wake = scheduled(now);
    void* tag = nullptr;
    bool ok = false;
    // gRPC deadlines are system_clock time points.
    const auto status = cq.AsyncNext(
        &tag, &ok,
        std::chrono::system_clock::now() +
            std::chrono::duration_cast<std::chrono::system_clock::duration>(wake - now));
    if (status == grpc::CompletionQueue::SHUTDOWN) break;
    if (status != grpc::CompletionQueue::GOT_EVENT) continue;
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    Record(*call, loads[call->variant], &result.variants[call->variant]);
    --in_flight;
    last_done = Clock::now();
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  result.seconds = std::chrono::duration<double>(last_done - start).count();
  return result;
}

}  // namespace qs::loadgen
