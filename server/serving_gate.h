// Admission of inference calls. Under load: at most `limit` calls are in
// flight (server.max_concurrent_calls); beyond it, calls are refused at once
// (RESOURCE_EXHAUSTED) rather than queued without bound. During shutdown:
// once draining starts, new calls are refused (UNAVAILABLE, so clients retry
// elsewhere) while calls already in flight finish; Shutdown waits for them
// (up to its grace period) before stopping gRPC. Without it, gRPC's own
// Shutdown(deadline) either cancels calls racing the shutdown or waits the
// whole grace period for idle connections to answer its GOAWAY ping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/status/status.h"

namespace qs {

class ServingGate {
 public:
  // Holds a call's place; empty (false) when the gate refused the call.
  class Ticket {
   public:
    Ticket() = default;
    explicit Ticket(ServingGate* gate) : gate_(gate) {}
    Ticket(Ticket&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
      if (gate_) gate_->Exit();
    }
    explicit operator bool() const { return gate_ != nullptr; }

   private:
    ServingGate* gate_ = nullptr;
  };

  // A ticket, or an empty one when refused; then `*refused` (if given) says
  // why: UNAVAILABLE while draining, RESOURCE_EXHAUSTED at the limit.
  Ticket TryEnter(absl::Status* refused = nullptr);
  // Calls admitted at once; 0 = no bound.
  void SetLimit(int max_in_flight);
  void StartDraining();
  bool draining() const;
  // True when no call is in flight before `deadline`.
  bool WaitIdle(std::chrono::steady_clock::time_point deadline);

 private:
  void Exit();

  mutable std::mutex mu_;
  std::condition_variable idle_;
  int in_flight_ = 0;     // guarded by mu_
  int limit_ = 0;         // guarded by mu_
  bool draining_ = false;  // guarded by mu_
};

}  // namespace qs
