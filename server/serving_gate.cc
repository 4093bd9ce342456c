#include "server/serving_gate.h"

#include "absl/strings/str_cat.h"

namespace qs {

ServingGate::Ticket ServingGate::TryEnter(absl::Status* refused) {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) {
    if (refused) *refused = absl::UnavailableError("the server is shutting down");
    return Ticket();
  }
  if (limit_ > 0 && in_flight_ >= limit_) {
    if (refused) {
      *refused = absl::ResourceExhaustedError(absl::StrCat(
          "the server is handling its limit of ", limit_,
          " calls at once (server.max_concurrent_calls); retry later"));
    }
    return Ticket();
  }
  ++in_flight_;
  return Ticket(this);
}

void ServingGate::SetLimit(int max_in_flight) {
  std::lock_guard<std::mutex> lock(mu_);
  limit_ = max_in_flight;
}

void ServingGate::Exit() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

void ServingGate::StartDraining() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
}

bool ServingGate::draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_;
}

bool ServingGate::WaitIdle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_until(lock, deadline, [&] { return in_flight_ == 0; });
}

}  // namespace qs
