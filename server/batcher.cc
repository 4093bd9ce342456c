#include "server/batcher.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace qs {

struct Batcher::Pending {
  std::vector<Tensor> inputs;
  int64_t rows = 0;
  std::vector<Shape> item_shapes;  // per input, without the batch dim: batch key
  Clock::time_point enqueued;
  std::promise<absl::StatusOr<std::vector<Tensor>>> done;
  std::atomic<bool> abandoned{false};  // the caller stopped waiting
};

namespace {

// How often a waiting call checks whether its client cancelled. gRPC's sync
// API has no cancellation callback, so every waiting handler thread polls.
// At 5 ms, 32 waiting calls woke 6400 times a second, preempting the
// engine's OpenMP threads mid-primitive (a preempted thread stalls its whole
// team at the next barrier): ResNet-18 w8a8 to 32 closed-loop clients on 2
// cores served 63-65 samples/s; at 50 ms, 67-69 (the sync threads' futex
// traffic fell from 17 % of the server's CPU to 2 %).
constexpr auto kCancelPoll = std::chrono::milliseconds(50);

// Rows [begin, begin + rows) of a batch-major tensor.
Tensor SliceRows(const Tensor& t, int64_t begin, int64_t rows) {
  Shape shape = t.shape();
  const int64_t total = shape[0];
  shape[0] = rows;
  Tensor out = Tensor::Uninitialized(t.dtype(), shape);  // memcpy'd in full below
  const size_t row_bytes = total == 0 ? 0 : t.byte_size() / total;
  if (row_bytes > 0) {
    std::memcpy(out.raw_data(), static_cast<const std::byte*>(t.raw_data()) + begin * row_bytes,
                rows * row_bytes);
  }
  return out;
}

}  // namespace

Batcher::Batcher(std::shared_ptr<const CompiledModel> model, BatchingOptions options,
                 std::function<void(const BatchEvent&)> on_batch)
    : model_(std::move(model)), options_(options), on_batch_(std::move(on_batch)) {
  // Batching needs a dynamic leading dim on every input and output.
  batchable_ = !model_->inputs().empty();
  for (const auto& in : model_->inputs()) batchable_ &= !in.shape.empty() && in.shape[0] < 0;
  for (const auto& out : model_->outputs()) batchable_ &= !out.shape.empty() && out.shape[0] < 0;
  if (!batching()) return;
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

absl::StatusOr<std::vector<Tensor>> Batcher::Run(std::vector<Tensor> inputs,
                                                 Clock::time_point deadline,
                                                 const std::function<bool()>& cancelled) {
  if (Clock::now() >= deadline) {
    return absl::DeadlineExceededError("the deadline expired before the request was run");
  }
  if (cancelled && cancelled()) return absl::CancelledError("the call was cancelled");
  if (!batching()) return RunUnbatched(std::move(inputs));
  auto p = std::make_shared<Pending>();
  p->rows = inputs[0].rank() > 0 ? inputs[0].shape()[0] : 0;
  for (const auto& t : inputs) {
    if (t.rank() == 0 || t.shape()[0] != p->rows) {
      return absl::InvalidArgumentError(
          "all inputs must have the same batch size (first dimension)");
    }
    p->item_shapes.emplace_back(t.shape().begin() + 1, t.shape().end());
  }
  p->inputs = std::move(inputs);
  auto result = p->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    if (queued_rows_ + p->rows > options_.max_queue_rows) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the batching queue is full (", queued_rows_, " rows queued, limit ",
          options_.max_queue_rows, ")"));
    }
    p->enqueued = Clock::now();
    queued_rows_ += p->rows;
    queue_.push_back(p);
    // Under the lock: once it is released, the batcher may finish this
    // request and be destroyed (~Batcher drains the queue) before this
    // thread would get to notify, which would then use a destroyed
    // condition variable (found by TSan on batcher_test). From here on,
    // this call touches only `p` and its future.
    wake_.notify_one();
  }
  // Wait in slices so a cancelled call stops waiting (and leaves the queue)
  // within kCancelPoll.
  while (true) {
    const auto slice = std::min(deadline, Clock::now() + kCancelPoll);
    if (result.wait_until(slice) == std::future_status::ready) return result.get();
    if (Clock::now() >= deadline) {
      p->abandoned = true;
      return absl::DeadlineExceededError("the deadline expired while the request was queued");
    }
    if (cancelled && cancelled()) {
      p->abandoned = true;
      return absl::CancelledError("the call was cancelled");
    }
  }
}

std::vector<std::shared_ptr<Batcher::Pending>> Batcher::TakeBatch(
    std::unique_lock<std::mutex>& lock) {
  std::vector<std::shared_ptr<Pending>> batch;
  // Drop requests whose callers gave up.
  while (!queue_.empty() && queue_.front()->abandoned) {
    queued_rows_ -= queue_.front()->rows;
    queue_.pop_front();
  }
  if (queue_.empty()) return batch;
  const auto& key = queue_.front()->item_shapes;
  int64_t rows = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    const auto& p = *it;
    const bool fits = batch.empty() || rows + p->rows <= options_.max_batch_size;
    if (!p->abandoned && p->item_shapes == key && fits) {
      rows += p->rows;
      batch.push_back(p);
    }
    if (p->abandoned || (p->item_shapes == key && fits)) {
      queued_rows_ -= p->rows;
      it = queue_.erase(it);
    } else {
      ++it;
    }
    if (rows >= options_.max_batch_size) break;
  }
  return batch;
}

void Batcher::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    // Hold the batch open until it is full or its oldest request is due.
    const auto due = queue_.front()->enqueued + options_.max_queue_delay;
    wake_.wait_until(lock, due, [&] { return stopping_ || queued_rows_ >= options_.max_batch_size; });
    std::vector<std::shared_ptr<Pending>> batch = TakeBatch(lock);
    if (batch.empty()) continue;
    lock.unlock();
    Execute(std::move(batch));
    lock.lock();
  }
}

absl::StatusOr<std::vector<Tensor>> Batcher::RunUnbatched(std::vector<Tensor> inputs) {
  BatchEvent event;
  event.requests = 1;
  event.rows = !inputs.empty() && inputs[0].rank() > 0 ? inputs[0].shape()[0] : 1;
  const auto start = Clock::now();
  auto outputs = model_->RunOrdered(std::move(inputs));
  event.compute = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  if (on_batch_) on_batch_(event);
  return outputs;
}

void Batcher::Execute(std::vector<std::shared_ptr<Pending>> batch) {
  const auto start = Clock::now();
  BatchEvent event;
  event.requests = static_cast<int>(batch.size());
  event.oldest_wait =
      std::chrono::duration_cast<std::chrono::microseconds>(start - batch.front()->enqueued);
  for (const auto& p : batch) event.rows += p->rows;
  // Concatenate along dim 0.
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < batch.front()->inputs.size(); ++i) {
    Shape shape = batch.front()->inputs[i].shape();
    shape[0] = event.rows;
    // Every byte is copied from a part below.
    Tensor t = Tensor::Uninitialized(batch.front()->inputs[i].dtype(), shape);
    size_t offset = 0;
    for (const auto& p : batch) {
      const Tensor& part = p->inputs[i];
      std::memcpy(static_cast<std::byte*>(t.raw_data()) + offset, part.raw_data(), part.byte_size());
      offset += part.byte_size();
    }
    inputs.push_back(std::move(t));
  }
  auto outputs = model_->RunOrdered(std::move(inputs));
  event.compute = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  // Report before answering, so a caller that got its answer sees its batch.
  if (on_batch_) on_batch_(event);
  int64_t row = 0;
  for (const auto& p : batch) {
    if (!outputs.ok()) {
      p->done.set_value(outputs.status());
      continue;
    }
    std::vector<Tensor> mine;
    for (const Tensor& out : *outputs) mine.push_back(SliceRows(out, row, p->rows));
    row += p->rows;
    p->done.set_value(std::move(mine));
  }
}

}  // namespace qs
