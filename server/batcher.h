// Dynamic batching for one served variant: concurrent requests whose
// inputs share all but the batch dimension are concatenated along dim 0,
// run as one batch, and split again. A batch closes when it reaches
// `max_batch_size` rows or when its oldest request has waited
// `max_queue_delay`; a request whose deadline has passed when its batch
// forms is not run, and an abandoned (cancelled) request leaves the queue.
//
// Requests always run on the batcher's own worker threads, also without
// batching (a batch of one): callers hand a request over and are called
// back (Submit), so no thread waits per request — gRPC's callback API
// serves a call without a thread of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/compiled_model.h"

namespace qs {

struct BatchingOptions {
  int max_batch_size = 1;  // rows; 1 disables batching
  std::chrono::microseconds max_queue_delay{500};
  int64_t max_queue_rows = 1024;  // beyond this, RESOURCE_EXHAUSTED
  // Batches (or, without batching, requests) run concurrently. 0 =
  // automatic: 1 when batching (a busy worker lets the next batch grow),
  // else hardware threads / threads_per_run, so that concurrent unbatched
  // requests fill the cores as they did on gRPC's own threads.
  int workers = 0;
  int threads_per_run = 1;  // the engine's intra-op threads (for `workers: 0`)
};

// What one executed batch looked like (for metrics and tests). Without
// batching, every request is a batch of its own.
struct BatchEvent {
  int64_t rows = 0;
  int requests = 0;
  std::chrono::microseconds oldest_wait{0};  // queue time of the oldest request
  std::chrono::microseconds compute{0};
};

class Batcher {
 public:
  using Clock = std::chrono::steady_clock;
  using Result = absl::StatusOr<std::vector<Tensor>>;
  // Receives a request's outputs (its rows of the batch) or why it failed.
  using Done = std::function<void(Result)>;

  // A queued request, as its caller sees it.
  class Request {
   public:
    // Takes the request back if no worker has claimed it yet: true means
    // `done` will never be called (the caller answers the request itself)
    // and the request has left the queue; false means it is running or
    // answered, and `done` is called (or was). The caller keeps the
    // batcher alive meanwhile.
    bool Abandon();

   private:
    friend class Batcher;
    enum State : int { kQueued, kClaimed, kAbandoned };
    bool Claim();  // by a worker; false if abandoned

    std::vector<Tensor> inputs;
    int64_t rows = 0;
    std::vector<Shape> item_shapes;  // per input, without the batch dim: batch key
    Clock::time_point enqueued;
    Clock::time_point deadline;
    Done done;
    std::atomic<int> state{kQueued};
    Batcher* batcher = nullptr;
    bool counted = false;  // its rows are in queued_rows_; guarded by the batcher's mu_
  };

  Batcher(std::shared_ptr<const CompiledModel> model, BatchingOptions options,
          std::function<void(const BatchEvent&)> on_batch = nullptr);
  // Finishes every queued request, then stops the workers.
  ~Batcher();

  // Queues `inputs` (graph-input order, already validated for names and
  // dtypes). `done` is called exactly once — on a worker thread, or within
  // this call when the request is refused (expired deadline, full queue,
  // shutting down; then the result is null) — unless Abandon() returns true.
  // A request found past `deadline` when its batch forms gets
  // DEADLINE_EXCEEDED instead of running (callers that must answer at the
  // deadline itself abandon the request then, as Run and gRPC calls do).
  std::shared_ptr<Request> Submit(std::vector<Tensor> inputs, Clock::time_point deadline,
                                  Done done);

  // Submit, waiting for the answer: DEADLINE_EXCEEDED at `deadline`,
  // CANCELLED soon after `cancelled()` turns true while waiting.
  Result Run(std::vector<Tensor> inputs, Clock::time_point deadline,
             const std::function<bool()>& cancelled);

  bool batching() const { return batchable_ && options_.max_batch_size > 1; }

 private:
  void WorkerLoop();
  // An abandoned request: its rows stop counting and its inputs are freed
  // at once; the queue entry itself goes at the next scan (O(1) here, so a
  // mass cancellation is not quadratic in the queue length).
  void Forget(Request* request);
  // Takes the next batch off the queue (caller holds the lock); requests
  // found past their deadline go to `expired`.
  std::vector<std::shared_ptr<Request>> TakeBatch(std::vector<std::shared_ptr<Request>>& expired);
  void Execute(std::vector<std::shared_ptr<Request>> batch);
  // Calls a request's callback; an exception from it stays there.
  static void Answer(Request& r, Result result);
  // Execute's work; counts in `answered` the requests whose callback it has
  // called (the first `answered` of `batch`).
  void RunBatch(const std::vector<std::shared_ptr<Request>>& batch, size_t& answered);

  const std::shared_ptr<const CompiledModel> model_;
  const BatchingOptions options_;
  const std::function<void(const BatchEvent&)> on_batch_;
  bool batchable_ = false;
  int64_t max_rows_ = 1;  // rows per run: max_batch_size when batching, else 1

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Request>> queue_;  // guarded by mu_
  int64_t queued_rows_ = 0;                     // guarded by mu_
  bool stopping_ = false;                       // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace qs
