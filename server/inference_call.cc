#include "server/inference_call.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "server/call_deadline.h"
#include "server/status_util.h"
#include "server/tsan_hand_over.h"

namespace qs {
namespace {

// A status for an exception escaping request handling (StatusFromException):
// the call is answered and the server keeps serving. Never throws.
grpc::Status FromException(std::exception_ptr error) noexcept {
  const absl::Status status = StatusFromException(error, "handling this request");
  try {
    return ToGrpcStatus(status);
  } catch (...) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()), "");
  }
}

// What the call's reactor and the batcher's callback share. The reactor may
// be gone (OnDone) while a batcher thread still holds this.
class CallState {
 public:
  CallState(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
            const ServerMetrics* metrics)
      : ctx_(ctx), reactor_(reactor), metrics_(metrics) {}

  RequestMetrics& metrics() { return metrics_; }

  // The first call answers; later ones are ignored (a cancellation racing
  // the batcher's answer).
  // Never throws: a call that is not finished holds its gate ticket and
  // model forever (and an exception here could be on a batcher thread).
  void Finish(grpc::Status status) noexcept {
    if (finished_.exchange(true)) return;
    try {
      {
        // Answered after the client gave up (the run was under way): count
        // what the client saw. IsCancelled also sees an expiry whose
        // OnCancel gRPC has not delivered yet.
        std::lock_guard<std::mutex> lock(mu_);
        if (status.ok() && (cancelled_ || ctx_->IsCancelled())) {
          status = grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
        }
      }
      status = ExpiredAsDeadlineExceeded(*ctx_, std::move(status));
      metrics_.Finish(status);
    } catch (...) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, "");  // allocates nothing
    }
    std::lock_guard<std::mutex> lock(finish_mu_);
    finishing_thread_ = std::this_thread::get_id();
    reactor_->Finish(std::move(status));
    finishing_thread_ = std::thread::id();
  }

  // OnDone waits for a Finish in progress, unless it runs inside that very
  // Finish (gRPC runs OnDone on its executor, but inline on the calling
  // thread when the executor has no threads, e.g. during grpc_shutdown).
  void WaitForFinish() {
    if (finishing_thread_.load() == std::this_thread::get_id()) return;
    std::lock_guard<std::mutex> wait(finish_mu_);
  }

  // The request is queued (null: it was answered already).
  void Queued(const std::shared_ptr<Batcher::Request>& request) {
    bool cancelled = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
      request_ = request;
    }
    if (cancelled) TakeBack(request);
  }

  // The client cancelled, or the deadline passed (gRPC cancels the call).
  void Cancel() {
    std::shared_ptr<Batcher::Request> request;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      request = request_.lock();
    }
    // Not queued yet: Queued() takes it back. Gone: answered.
    if (request != nullptr) TakeBack(request);
  }

 private:
  // A request a worker has claimed runs to the end and answers itself.
  void TakeBack(const std::shared_ptr<Batcher::Request>& request) {
    if (request != nullptr && request->Abandon()) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled while queued"));
    }
  }

  grpc::CallbackServerContext* const ctx_;
  grpc::ServerUnaryReactor* const reactor_;
  RequestMetrics metrics_;
  std::atomic<bool> finished_{false};
  // Held while Finish hands the answer to gRPC; OnDone waits for it before
  // deleting the reactor (gRPC runs OnDone on another thread once the
  // answer is out, but Finish may still be reading the reactor then).
  std::mutex finish_mu_;
  std::atomic<std::thread::id> finishing_thread_{};
  std::mutex mu_;
  bool cancelled_ = false;  // guarded by mu_
  // Weak: the request's callback owns this state (a strong reference here
  // would be a cycle, leaking every call); gone once the batcher is done.
  std::weak_ptr<Batcher::Request> request_;  // guarded by mu_
};

class InferenceCall final : public grpc::ServerUnaryReactor {
 public:
  InferenceCall(grpc::CallbackServerContext* ctx, ServingGate::Ticket ticket,
                const ServerMetrics* metrics)
      : state_(std::make_shared<CallState>(ctx, this, metrics)),
        ticket_(std::move(ticket)) {}

  const std::shared_ptr<CallState>& state() const { return state_; }
  void Hold(std::shared_ptr<const ServedModel> model) { model_ = std::move(model); }

  void OnCancel() override {
    TakeOver(Key());
    std::shared_ptr<CallState> state = state_;  // Cancel may end in OnDone
    state->Cancel();
  }
  void OnDone() override {
    TakeOver(Key());
    state_->WaitForFinish();
    delete this;
  }

  // The address TSan hand-overs are keyed by.
  void* Key() { return static_cast<grpc::ServerUnaryReactor*>(this); }

 private:
  std::shared_ptr<CallState> state_;
  // Released with the reactor, once gRPC is done with the call (its answer
  // is on the wire): a draining shutdown, which waits for the gate to
  // empty, then never cuts off an answer.
  ServingGate::Ticket ticket_;
  // The model lives until gRPC is done with the call, and is released here,
  // on a gRPC thread: never on the batcher thread that answered, because
  // the model's destructor joins its batcher's threads.
  std::shared_ptr<const ServedModel> model_;
};

// Validates the request and queues it; the call is answered on every path.
void Start(InferenceCall* call, grpc::CallbackServerContext* ctx, const PrepareRun& prepare) {
  std::shared_ptr<CallState> state = call->state();
  PreparedRun run;
  grpc::Status prepared = prepare(state->metrics(), run);
  if (!prepared.ok()) return state->Finish(std::move(prepared));
  call->Hold(run.model);
  if (ctx->IsCancelled()) {
    return state->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"));
  }
  const ServedModel& model = *run.model;
  std::shared_ptr<Batcher::Request> request = model.Submit(
      run.variant, std::move(run.inputs), SteadyDeadline(*ctx), std::move(run.request_id),
      [state, respond = std::move(run.respond)](Batcher::Result outputs) {
        grpc::Status status;
        try {
          status = outputs.ok() ? respond(*outputs) : ToGrpcStatus(outputs.status());
        } catch (...) {
          status = FromException(std::current_exception());
        }
        state->Finish(std::move(status));
      });
  state->Queued(request);
}

}  // namespace

grpc::ServerUnaryReactor* StartInferenceCall(grpc::CallbackServerContext* ctx,
                                             const ModelRegistry& registry,
                                             const ServerMetrics* metrics,
                                             const PrepareRun& prepare) {
  absl::Status refused;
  ServingGate::Ticket ticket = registry.gate().TryEnter(&refused);
  if (!ticket) {
    // Counted under model "unknown": the model is not looked up.
    grpc::Status status = RequestMetrics(metrics).Finish(ToGrpcStatus(refused));
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(std::move(status));
    return reactor;
  }
  auto* call = new InferenceCall(ctx, std::move(ticket), metrics);
  // The reactor is not bound to the call until this returns: gRPC keeps a
  // Finish() from another thread until then, so `call` stays valid here.
  try {
    Start(call, ctx, prepare);
  } catch (...) {
    // E.g. bad_alloc decoding a huge tensor: answer the call (a reactor
    // that never finishes would hold its gate ticket forever). Both never
    // throw.
    call->state()->Finish(FromException(std::current_exception()));
  }
  HandOver(call->Key());  // to OnCancel / OnDone on gRPC's threads
  return call;
}

}  // namespace qs
