#include "tools/client/load_runner.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "quantserve/v1/inference.grpc.pb.h"

namespace qs::client {
namespace {

namespace v1 = quantserve::v1;
using Clock = std::chrono::steady_clock;

// raw_data is little-endian; Tensor bytes are native.
static_assert(std::endian::native == std::endian::little,
              "quantserve-client sends native float bytes as raw_data");

v1::PredictRequest MakeRequest(const Tensor& batch, const LoadOptions& options, int64_t index) {
  v1::PredictRequest req;
  req.set_model(options.model);
  req.set_variant(options.variant);
  req.set_top_k(options.top_k);
  req.set_request_id(options.id_prefix + std::to_string(index));
  v1::Tensor* t = req.add_inputs();
  t->set_name(options.input_name);
  t->set_datatype(v1::FP32);
  for (int64_t d : batch.shape()) t->add_shape(d);
  t->set_raw_data(batch.raw_data(), batch.byte_size());
  return req;
}

}  // namespace

int64_t LoadResult::error_count() const {
  int64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC's codes are numerically absl's (both follow google.rpc.Code).
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

absl::StatusOr<v1::ModelMetadata> FetchModelMetadata(const std::shared_ptr<grpc::Channel>& channel,
                                                    const std::string& address,
                                                    const std::string& model,
                                                    int64_t timeout_ms) {
  v1::GetModelMetadataRequest request;
  request.set_model(model);
  v1::ModelMetadata meta;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 10000)));
  grpc::Status status = v1::InferenceService::NewStub(channel)->GetModelMetadata(&ctx, request, &meta);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        "GetModelMetadata('" + model + "') at " + address + ": " +
                            StatusCodeName(status.error_code()) + ": " + status.error_message());
  }
  return meta;
}

LoadResult RunLoad(const std::shared_ptr<grpc::Channel>& channel, const Dataset& data,
                   const LoadOptions& options) {
  LoadResult result;
  const int64_t n = data.size();
  const int64_t batch = std::max<int64_t>(1, options.batch);
  const int64_t num_requests = (n + batch - 1) / batch;
  result.predictions.assign(static_cast<size_t>(n), -1);
  std::atomic<int64_t> next{0};
  std::mutex mu;  // guards everything in `result` but `predictions`
  // Each worker writes only its own requests' rows of `predictions`.
  auto worker = [&] {
    auto stub = v1::InferenceService::NewStub(channel);
    std::vector<double> latencies;
    int64_t answered = 0, feedback_sent = 0;
    std::string variant;
    for (int64_t i = next++; i < num_requests; i = next++) {
      const int64_t begin = i * batch;
      const Tensor rows = data.Batch(begin, batch);
      const int64_t count = rows.shape()[0];
      v1::PredictRequest req = MakeRequest(rows, options, i);
      v1::PredictResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(options.timeout_ms));
      const auto start = Clock::now();
      grpc::Status status = stub->Predict(&ctx, req, &resp);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      std::string code, message;
      if (!status.ok()) {
        code = StatusCodeName(status.error_code());
        message = status.error_message();
      } else if (options.top_k > 0 && resp.top_k_size() != count) {
        code = "BAD_RESPONSE";
        message = "expected " + std::to_string(count) + " top_k entries, got " +
                  std::to_string(resp.top_k_size());
      } else {
        latencies.push_back(ms);
        answered += count;
        if (variant.empty()) variant = resp.variant();
        for (int64_t r = 0; r < count && options.top_k > 0; ++r) {
          const auto& scores = resp.top_k(static_cast<int>(r));
          if (scores.indices_size() > 0) result.predictions[begin + r] = scores.indices(0);
        }
        if (options.feedback && data.labels.num_elements() >= begin + count) {
          // Outside the timed call: Feedback is not part of the latency.
          v1::FeedbackRequest fb;
          fb.set_model(options.model);
          fb.set_request_id(req.request_id());
          const int64_t* labels = data.labels.data<int64_t>() + begin;
          fb.mutable_labels()->Add(labels, labels + count);
          v1::FeedbackResponse fb_resp;
          grpc::ClientContext fb_ctx;
          fb_ctx.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::milliseconds(options.timeout_ms));
          grpc::Status fb_status = stub->Feedback(&fb_ctx, fb, &fb_resp);
          if (fb_status.ok()) {
            ++feedback_sent;
          } else {
            code = "FEEDBACK_" + StatusCodeName(fb_status.error_code());
            message = fb_status.error_message();
          }
        }
      }
      if (!code.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        if (result.errors[code]++ == 0) result.first_error[code] = message;
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    result.latencies_ms.insert(result.latencies_ms.end(), latencies.begin(), latencies.end());
    result.answered += answered;
    result.feedback_sent += feedback_sent;
    if (result.served_variant.empty()) result.served_variant = variant;
  };

  const int threads =
      static_cast<int>(std::clamp<int64_t>(options.concurrency, 1, std::max<int64_t>(1, num_requests)));
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.requests = num_requests;
  result.images = n;
  return result;
}

}  // namespace qs::client
