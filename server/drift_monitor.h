// Live accuracy drift of a model's quantized variants. A sampled fraction of
// the requests is replayed on the model's reference (fp32) variant by a
// background worker — off the request's critical path — and each sample of
// the two outputs is compared (top-1 agreement, KL divergence, relative
// error; engine/output_compare.h). In mirror mode a sampled request to any
// variant is replayed on every other variant too, so all bit widths are
// compared on the same live inputs even when clients call only one.
//
// The queue of sampled requests is bounded: when it is full a sample is
// dropped (and reported), never waited for. The worker runs at a lower CPU
// priority than the request handlers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "engine/compiled_model.h"
#include "engine/output_compare.h"

namespace qs {

class FeedbackStore;

// Where the monitor's findings go (the server's Prometheus metrics; tests).
// Called from the request thread (Enqueued, Dropped) and the worker thread
// (the rest); implementations must be thread-safe.
class DriftObserver {
 public:
  virtual ~DriftObserver() = default;
  // The samples of one replayed request, variant against the reference.
  virtual void Compared(int variant, const std::vector<SampleComparison>& samples) = 0;
  // Replaying the request on `variant` (or on the reference, to compare
  // `variant`) failed.
  virtual void ReplayFailed(int variant, const absl::Status& status) = 0;
  // A request served by `served_variant` was sampled and queued / dropped.
  virtual void Enqueued(int served_variant) = 0;
  virtual void Dropped(int served_variant) = 0;
  virtual void QueueLength(size_t length) = 0;
};

struct DriftOptions {
  double sample_rate = 0;  // 0..1
  bool mirror = false;
  int reference = 0;        // index of the reference variant
  int queue_capacity = 64;  // >= 1
  // Lowers the worker's scheduling priority (nice +10) so that replays
  // yield the CPU to live requests.
  bool low_priority = true;
};

class DriftMonitor {
 public:
  // `variants` in the model's order. `feedback` (may be null) receives the
  // top-1 answers of the variants a replay ran for requests with an id.
  DriftMonitor(std::vector<std::shared_ptr<const CompiledModel>> variants, DriftOptions options,
               std::shared_ptr<DriftObserver> observer,
               std::shared_ptr<FeedbackStore> feedback = nullptr);
  // Stops the worker; queued samples are discarded.
  ~DriftMonitor();
  DriftMonitor(const DriftMonitor&) = delete;
  DriftMonitor& operator=(const DriftMonitor&) = delete;

  // Whether the next request to `variant` is sampled (call before running
  // it, to keep its inputs). Deterministic: exactly sample_rate of the
  // requests to each variant, evenly spaced.
  bool ShouldSample(int variant);
  // Queues a sampled request: its inputs (in graph order) and the outputs
  // `variant` served. Never blocks on the replay.
  void Submit(int variant, std::vector<Tensor> inputs, std::vector<Tensor> outputs,
              std::string request_id);
  // Blocks until the queue is empty and no replay is running (tests,
  // benchmarks).
  void WaitIdle();

  const DriftOptions& options() const { return options_; }

 private:
  struct Job {
    int variant;
    std::vector<Tensor> inputs;
    std::vector<Tensor> outputs;
    std::string request_id;
  };
  void WorkerLoop();
  void Replay(const Job& job);
  // The first output of `variant` for `job`'s inputs (the served one when
  // `variant` served it); reports failures.
  absl::StatusOr<Tensor> OutputOf(int variant, const Job& job, int blame_variant);

  const std::vector<std::shared_ptr<const CompiledModel>> variants_;
  const DriftOptions options_;
  const std::shared_ptr<DriftObserver> observer_;
  const std::shared_ptr<FeedbackStore> feedback_;
  std::vector<std::atomic<uint64_t>> counters_;  // requests seen, per variant

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Job> queue_;  // guarded by mu_
  bool busy_ = false;      // guarded by mu_; a replay is running
  bool stopping_ = false;  // guarded by mu_
  std::thread worker_;
};

}  // namespace qs
