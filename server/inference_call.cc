#include "server/inference_call.h"

#include <atomic>
#include <mutex>
#include <optional>

#include "server/call_deadline.h"
#include "server/status_util.h"
#include "server/tsan_hand_over.h"

namespace qs {
namespace {

// What the call's reactor and the batcher's callback share. The reactor may
// be gone (OnDone) while a batcher thread still holds this.
class CallState {
 public:
  CallState(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
            ServingGate::Ticket ticket, const ServerMetrics* metrics)
      : ctx_(ctx), reactor_(reactor), ticket_(std::in_place, std::move(ticket)),
        metrics_(metrics) {}

  RequestMetrics& metrics() { return metrics_; }

  // The first call answers; later ones are ignored (a cancellation racing
  // the batcher's answer).
  void Finish(grpc::Status status) {
    if (finished_.exchange(true)) return;
    {
      // Answered after the client gave up (the run was under way): count
      // what the client saw.
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_ && status.ok()) {
        status = grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
      }
    }
    status = ExpiredAsDeadlineExceeded(*ctx_, std::move(status));
    metrics_.Finish(status);
    HandOver(reactor_);  // the response this thread wrote, to OnDone's thread
    reactor_->Finish(std::move(status));
    // After the answer is handed to gRPC, so that shutdown, which waits for
    // the gate to empty, never cancels a call that has its answer.
    ticket_.reset();
  }

  // The request is queued (null: it was answered already).
  void Queued(std::shared_ptr<Batcher::Request> request) {
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
  std::optional<ServingGate::Ticket> ticket_;
  RequestMetrics metrics_;
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  bool cancelled_ = false;                     // guarded by mu_
  // Weak: the request's callback owns this state (a strong reference here
  // would be a cycle, leaking every call); gone once the batcher is done.
  std::weak_ptr<Batcher::Request> request_;  // guarded by mu_
};

class InferenceCall final : public grpc::ServerUnaryReactor {
 public:
  InferenceCall(grpc::CallbackServerContext* ctx, ServingGate::Ticket ticket,
                const ServerMetrics* metrics)
      : state_(std::make_shared<CallState>(ctx, this, std::move(ticket), metrics)) {}

  const std::shared_ptr<CallState>& state() const { return state_; }
  void Hold(std::shared_ptr<const ServedModel> model) { model_ = std::move(model); }

  void OnCancel() override {
    TakeOver(static_cast<grpc::ServerUnaryReactor*>(this));
    std::shared_ptr<CallState> state = state_;  // Cancel may end in OnDone
    state->Cancel();
  }
  void OnDone() override {
    TakeOver(static_cast<grpc::ServerUnaryReactor*>(this));
    delete this;
  }

 private:
  std::shared_ptr<CallState> state_;
  // The model lives until gRPC is done with the call, and is released here,
  // on a gRPC thread: never on the batcher thread that answered, because
  // the model's destructor joins its batcher's threads.
  std::shared_ptr<const ServedModel> model_;
};

}  // namespace

grpc::ServerUnaryReactor* StartInferenceCall(grpc::CallbackServerContext* ctx,
                                             const ModelRegistry& registry,
                                             const ServerMetrics* metrics,
                                             const PrepareRun& prepare) {
  absl::Status refused;
  ServingGate::Ticket ticket = registry.gate().TryEnter(&refused);
  if (!ticket) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(refused));
    return reactor;
  }
  auto* call = new InferenceCall(ctx, std::move(ticket), metrics);
  // The reactor is not bound to the call until this returns: gRPC keeps a
  // Finish() from another thread until then, so `call` stays valid here.
  std::shared_ptr<CallState> state = call->state();
  PreparedRun run;
  grpc::Status prepared = prepare(state->metrics(), run);
  if (!prepared.ok()) {
    state->Finish(std::move(prepared));
    HandOver(static_cast<grpc::ServerUnaryReactor*>(call));
    return call;
  }
  call->Hold(run.model);
  if (ctx->IsCancelled()) {
    state->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"));
    HandOver(static_cast<grpc::ServerUnaryReactor*>(call));
    return call;
  }
  const ServedModel& model = *run.model;
  std::shared_ptr<Batcher::Request> request = model.Submit(
      run.variant, std::move(run.inputs), SteadyDeadline(*ctx), std::move(run.request_id),
      [state, respond = std::move(run.respond)](Batcher::Result outputs) {
        state->Finish(outputs.ok() ? respond(*outputs) : ToGrpcStatus(outputs.status()));
      });
  state->Queued(std::move(request));
  HandOver(static_cast<grpc::ServerUnaryReactor*>(call));
  return call;
}

}  // namespace qs
