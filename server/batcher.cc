#include "server/batcher.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <future>

#include "absl/strings/str_cat.h"
#include "server/status_util.h"
#include "server/usable_cores.h"

namespace qs {

namespace {

// How often Run() checks whether its caller cancelled. Only blocking callers
// poll; gRPC calls use Submit and abandon their request on cancellation.
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

// Concatenates one input of every request of a batch along dim 0.
Tensor ConcatRows(const std::vector<const Tensor*>& parts, int64_t rows) {
  Shape shape = parts.front()->shape();
  shape[0] = rows;
  Tensor t = Tensor::Uninitialized(parts.front()->dtype(), shape);  // every byte copied below
  size_t offset = 0;
  for (const Tensor* part : parts) {
    std::memcpy(static_cast<std::byte*>(t.raw_data()) + offset, part->raw_data(),
                part->byte_size());
    offset += part->byte_size();
  }
  return t;
}

}  // namespace

bool Batcher::Request::Abandon() {
  int expected = kQueued;
  if (!state.compare_exchange_strong(expected, kAbandoned)) return false;
  // Its rows no longer count against max_queue_rows or fill a batch.
  batcher->Forget(this);
  return true;
}

void Batcher::Forget(Request* request) {
  std::vector<Tensor> inputs;  // freed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  // A worker may have dropped it first (TakeBatch erases abandoned requests).
  if (!request->counted) return;
  request->counted = false;
  queued_rows_ -= request->rows;
  // No worker reads an abandoned request's inputs.
  inputs.swap(request->inputs);
}

bool Batcher::Request::Claim() {
  int expected = kQueued;
  return state.compare_exchange_strong(expected, kClaimed);
}

Batcher::Batcher(std::shared_ptr<const CompiledModel> model, BatchingOptions options,
                 std::function<void(const BatchEvent&)> on_batch)
    : model_(std::move(model)), options_(options), on_batch_(std::move(on_batch)) {
  // Batching needs a dynamic leading dim on every input and output.
  batchable_ = !model_->inputs().empty();
  for (const auto& in : model_->inputs()) batchable_ &= !in.shape.empty() && in.shape[0] < 0;
  for (const auto& out : model_->outputs()) batchable_ &= !out.shape.empty() && out.shape[0] < 0;
  max_rows_ = batching() ? options_.max_batch_size : 1;
  int workers = options_.workers;
  if (workers <= 0) {
    // At most the manual maximum (config: 1..64).
    workers = batching() ? 1 : std::clamp(UsableCores() / std::max(1, options_.threads_per_run), 1, 64);
  }
  for (int i = 0; i < workers; ++i) {
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

std::shared_ptr<Batcher::Request> Batcher::Submit(std::vector<Tensor> inputs,
                                                  Clock::time_point deadline, Done done) {
  if (Clock::now() >= deadline) {
    done(absl::DeadlineExceededError("the deadline expired before the request was run"));
    return nullptr;
  }
  auto r = std::make_shared<Request>();
  if (batching()) {
    r->rows = inputs[0].rank() > 0 ? inputs[0].shape()[0] : 0;
    for (const auto& t : inputs) {
      if (t.rank() == 0 || t.shape()[0] != r->rows) {
        done(absl::InvalidArgumentError(
            "all inputs must have the same batch size (first dimension)"));
        return nullptr;
      }
      r->item_shapes.emplace_back(t.shape().begin() + 1, t.shape().end());
    }
  } else {
    r->rows = 1;  // a run of its own; counts as one row of the queue
  }
  r->inputs = std::move(inputs);
  r->batcher = this;
  r->deadline = deadline;
  r->done = std::move(done);
  absl::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      refused = absl::UnavailableError("the server is shutting down");
    } else if (queued_rows_ + r->rows > options_.max_queue_rows) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("the batching queue is full (", queued_rows_, " rows queued, limit ",
                       options_.max_queue_rows, ")"));
    } else {
      r->enqueued = Clock::now();
      const bool was_empty = queue_.empty();
      queue_.push_back(r);
      queued_rows_ += r->rows;
      r->counted = true;
      // A worker is needed only to open a batch (the first request) or to
      // close a full one: a worker holding a batch open takes the requests
      // that arrive meanwhile when it is due, and a busy one comes back to
      // the queue by itself. Waking it for every request cost two futex
      // calls and a context switch per call (fmnist over gRPC: 3.1 -> 2.8
      // futex calls per request). Under the lock: once it is released, the
      // batcher may finish this request and be destroyed (~Batcher drains
      // the queue) before this thread would get to notify, which would then
      // use a destroyed condition variable (found by TSan on batcher_test).
      if (was_empty || queued_rows_ >= max_rows_) wake_.notify_one();
      return r;
    }
  }
  r->done(std::move(refused));
  return nullptr;
}

Batcher::Result Batcher::Run(std::vector<Tensor> inputs, Clock::time_point deadline,
                             const std::function<bool()>& cancelled) {
  if (cancelled && cancelled()) return absl::CancelledError("the call was cancelled");
  // Shared with the callback: this call may stop waiting before it runs.
  auto answer = std::make_shared<std::promise<Result>>();
  std::future<Result> result = answer->get_future();
  std::shared_ptr<Request> request = Submit(std::move(inputs), deadline, [answer](Result r) {
    answer->set_value(std::move(r));
  });
  while (true) {
    const auto slice = std::min(deadline, Clock::now() + kCancelPoll);
    if (result.wait_until(slice) == std::future_status::ready) return result.get();
    if (Clock::now() >= deadline) {
      if (request) request->Abandon();
      return absl::DeadlineExceededError("the deadline expired while the request was queued");
    }
    if (cancelled && cancelled()) {
      if (request) request->Abandon();
      return absl::CancelledError("the call was cancelled");
    }
  }
}

std::vector<std::shared_ptr<Batcher::Request>> Batcher::TakeBatch(
    std::vector<std::shared_ptr<Request>>& expired) {
  std::vector<std::shared_ptr<Request>> batch;
  const auto now = Clock::now();
  int64_t rows = 0;
  const std::vector<Shape>* key = nullptr;
  for (auto it = queue_.begin(); it != queue_.end() && rows < max_rows_;) {
    Request& r = **it;
    const bool gone = r.state.load() == Request::kAbandoned;
    const bool late = !gone && r.deadline <= now;
    // The batch key is the first live request's item shapes.
    const bool joins = !gone && !late && (key == nullptr || r.item_shapes == *key) &&
                       (batch.empty() || rows + r.rows <= max_rows_);
    if (!gone && !late && !joins) {
      ++it;
      continue;
    }
    // Claiming fails only if the caller abandoned it since the check above.
    if (r.Claim()) {
      if (joins) {
        key = &r.item_shapes;
        rows += r.rows;
        batch.push_back(*it);
      } else {
        expired.push_back(*it);
      }
    }
    if (r.counted) queued_rows_ -= r.rows;
    r.counted = false;
    it = queue_.erase(it);
  }
  return batch;
}

void Batcher::WorkerLoop() {
  // Named for `top -H`, perf and debuggers (at most 15 characters).
  pthread_setname_np(pthread_self(), "qs-batcher");
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    // Hold the batch open until it is full or its oldest request is due.
    const auto due = queue_.front()->enqueued + options_.max_queue_delay;
    wake_.wait_until(lock, due, [&] { return stopping_ || queued_rows_ >= max_rows_; });
    std::vector<std::shared_ptr<Request>> expired;
    std::vector<std::shared_ptr<Request>> batch = TakeBatch(expired);
    if (batch.empty() && expired.empty()) continue;
    // Another worker may take what is left while this one runs.
    if (!queue_.empty()) wake_.notify_one();
    lock.unlock();
    for (const auto& r : expired) {
      Answer(*r, absl::DeadlineExceededError("the deadline expired while the request was queued"));
    }
    if (!batch.empty()) Execute(std::move(batch));
    lock.lock();
  }
}

void Batcher::Execute(std::vector<std::shared_ptr<Request>> batch) {
  // Every request of the batch is answered exactly once, whatever throws
  // (bad_alloc concatenating a large batch, in the model, splitting): an
  // exception leaving this worker thread would end the process, and the
  // claimed requests would never be answered.
  size_t answered = 0;
  try {
    RunBatch(batch, answered);
  } catch (...) {
    const absl::Status error = StatusFromException(std::current_exception(), "running the batch");
    while (answered < batch.size()) Answer(*batch[answered++], error);
  }
}

void Batcher::Answer(Request& r, Result result) {
  try {
    r.done(std::move(result));
  } catch (...) {
    // The caller's callback failed; that is its own business, and the
    // batch's other requests are still answered.
  }
}

void Batcher::RunBatch(const std::vector<std::shared_ptr<Request>>& batch, size_t& answered) {
  const auto start = Clock::now();
  BatchEvent event;
  event.requests = static_cast<int>(batch.size());
  event.oldest_wait =
      std::chrono::duration_cast<std::chrono::microseconds>(start - batch.front()->enqueued);
  std::vector<Tensor> inputs;
  if (batch.size() == 1) {
    // A batch of one runs on its own tensors: nothing to concatenate or split.
    inputs = std::move(batch.front()->inputs);
    event.rows = !inputs.empty() && inputs[0].rank() > 0 ? inputs[0].shape()[0] : 1;
  } else {
    for (const auto& r : batch) event.rows += r->rows;
    for (size_t i = 0; i < batch.front()->inputs.size(); ++i) {
      std::vector<const Tensor*> parts;
      for (const auto& r : batch) parts.push_back(&r->inputs[i]);
      inputs.push_back(ConcatRows(parts, event.rows));
    }
  }
  Result outputs = model_->RunOrdered(std::move(inputs));
  event.compute = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  // Report before answering, so a caller that got its answer sees its batch.
  if (on_batch_) on_batch_(event);
  if (batch.size() == 1) {
    ++answered;
    Answer(*batch.front(), std::move(outputs));
    return;
  }
  int64_t row = 0;
  for (const auto& r : batch) {
    Result mine = outputs.ok() ? Result(std::vector<Tensor>()) : Result(outputs.status());
    if (outputs.ok()) {
      for (const Tensor& out : *outputs) mine->push_back(SliceRows(out, row, r->rows));
    }
    row += r->rows;
    ++answered;
    Answer(*r, std::move(mine));
  }
}

}  // namespace qs
