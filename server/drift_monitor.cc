#include "server/drift_monitor.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>

#include "server/feedback_store.h"

namespace qs {

DriftMonitor::DriftMonitor(std::vector<std::shared_ptr<const CompiledModel>> variants,
                           DriftOptions options, std::shared_ptr<DriftObserver> observer,
                           std::shared_ptr<FeedbackStore> feedback)
    : variants_(std::move(variants)),
      options_(options),
      observer_(std::move(observer)),
      feedback_(std::move(feedback)),
      counters_(variants_.size()) {
  worker_ = std::thread([this] { WorkerLoop(); });
}

DriftMonitor::~DriftMonitor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  worker_.join();
}

bool DriftMonitor::ShouldSample(int variant) {
  if (options_.sample_rate <= 0 || variant < 0 || variant >= static_cast<int>(variants_.size())) {
    return false;
  }
  // Shadow mode compares quantized variants with the reference; a request
  // the reference itself served has nothing to be compared with.
  if (!options_.mirror && variant == options_.reference) return false;
  if (options_.sample_rate >= 1) return true;
  // Request n is sampled when floor((n+1)·rate) > floor(n·rate): exactly
  // `rate` of the requests, evenly spaced, with one atomic increment.
  const uint64_t n = counters_[variant].fetch_add(1, std::memory_order_relaxed);
  return std::floor((n + 1) * options_.sample_rate) > std::floor(n * options_.sample_rate);
}

void DriftMonitor::Submit(int variant, std::vector<Tensor> inputs, std::vector<Tensor> outputs,
                          std::string request_id) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && static_cast<int>(queue_.size()) < options_.queue_capacity) {
      queue_.push_back(Job{variant, std::move(inputs), std::move(outputs), std::move(request_id)});
      // Under the lock, so that the last length reported is the current one.
      observer_->QueueLength(queue_.size());
      queued = true;
    }
  }
  if (!queued) {
    observer_->Dropped(variant);
    return;
  }
  observer_->Enqueued(variant);
  wake_.notify_one();
}

void DriftMonitor::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return stopping_ || (queue_.empty() && !busy_); });
}

void DriftMonitor::WorkerLoop() {
  if (options_.low_priority) {
    // Per-thread on Linux: the nice value of this thread only (and of the
    // OpenMP threads it starts, which inherit it).
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  }
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) break;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    observer_->QueueLength(queue_.size());
    lock.unlock();
    Replay(job);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
  busy_ = false;
  idle_.notify_all();
}

namespace {

absl::StatusOr<Tensor> ComparedOutput(const std::vector<Tensor>& outputs, const char* what) {
  if (const Tensor* t = FirstFloatOutput(outputs)) return *t;
  return absl::InternalError(std::string(what) + " has no float32 output to compare");
}

}  // namespace

absl::StatusOr<Tensor> DriftMonitor::OutputOf(int variant, const Job& job, int blame_variant) {
  if (variant == job.variant) return ComparedOutput(job.outputs, "the served request");
  absl::StatusOr<std::vector<Tensor>> out = variants_[variant]->RunOrdered(job.inputs);
  absl::StatusOr<Tensor> compared =
      out.ok() ? ComparedOutput(*out, "the replay") : absl::StatusOr<Tensor>(out.status());
  if (!compared.ok()) {
    observer_->ReplayFailed(blame_variant, compared.status());
    return compared.status();
  }
  if (feedback_ != nullptr && !job.request_id.empty()) {
    feedback_->Add(job.request_id, variant, RowArgMax(*compared));
  }
  return compared;
}

void DriftMonitor::Replay(const Job& job) {
  const int reference = options_.reference;
  std::vector<int> compared;  // variants compared against the reference
  if (options_.mirror) {
    for (int v = 0; v < static_cast<int>(variants_.size()); ++v) {
      if (v != reference) compared.push_back(v);
    }
  } else {
    compared.push_back(job.variant);
  }
  if (compared.empty()) return;
  absl::StatusOr<Tensor> ref = OutputOf(reference, job, compared.front());
  if (!ref.ok()) {
    for (size_t i = 1; i < compared.size(); ++i) observer_->ReplayFailed(compared[i], ref.status());
    return;
  }
  for (int v : compared) {
    absl::StatusOr<Tensor> out = OutputOf(v, job, v);
    if (!out.ok()) continue;
    absl::StatusOr<std::vector<SampleComparison>> samples = CompareOutputs(*ref, *out);
    if (!samples.ok()) {
      observer_->ReplayFailed(v, samples.status());
      continue;
    }
    observer_->Compared(v, *samples);
  }
}

}  // namespace qs
