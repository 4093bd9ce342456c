#include "server/serving_gate.h"

namespace qs {

ServingGate::Ticket ServingGate::TryEnter() {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) return Ticket();
  ++in_flight_;
  return Ticket(this);
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
