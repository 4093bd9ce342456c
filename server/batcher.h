// Dynamic batching for one served variant: concurrent requests whose
// inputs share all but the batch dimension are concatenated along dim 0,
// run as one batch, and split again. A batch closes when it reaches
// `max_batch_size` rows or when its oldest request has waited
// `max_queue_delay`; a request never waits past its deadline, and a
// cancelled request is dropped from the queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
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
  int workers = 1;                // batches run concurrently
};

// What one executed batch looked like (for metrics and tests). Without
// batching, every request is a batch of its own with oldest_wait 0.
struct BatchEvent {
  int64_t rows = 0;
  int requests = 0;
  std::chrono::microseconds oldest_wait{0};  // queue time of the oldest request
  std::chrono::microseconds compute{0};
};

class Batcher {
 public:
  using Clock = std::chrono::steady_clock;

  Batcher(std::shared_ptr<const CompiledModel> model, BatchingOptions options,
          std::function<void(const BatchEvent&)> on_batch = nullptr);
  // Finishes every queued request, then stops the workers.
  ~Batcher();

  // Inputs in graph-input order, already validated for names and dtypes.
  // Blocks until the rows are computed; DEADLINE_EXCEEDED at `deadline`,
  // CANCELLED as soon as `cancelled()` turns true while waiting.
  absl::StatusOr<std::vector<Tensor>> Run(std::vector<Tensor> inputs, Clock::time_point deadline,
                                          const std::function<bool()>& cancelled);

  bool batching() const { return batchable_ && options_.max_batch_size > 1; }

 private:
  struct Pending;
  void WorkerLoop();
  // Takes the next batch off the queue (caller holds the lock).
  std::vector<std::shared_ptr<Pending>> TakeBatch(std::unique_lock<std::mutex>& lock);
  void Execute(std::vector<std::shared_ptr<Pending>> batch);
  absl::StatusOr<std::vector<Tensor>> RunUnbatched(std::vector<Tensor> inputs);

  const std::shared_ptr<const CompiledModel> model_;
  const BatchingOptions options_;
  const std::function<void(const BatchEvent&)> on_batch_;
  bool batchable_ = false;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Pending>> queue_;  // guarded by mu_
  int64_t queued_rows_ = 0;                     // guarded by mu_
  bool stopping_ = false;                       // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace qs
