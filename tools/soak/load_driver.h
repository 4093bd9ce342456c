// The soak's clients on gRPC's asynchronous API: a few completion-queue
// threads drive many closed-loop clients (each has one call in flight and
// sends the next as soon as it is answered), so hundreds of concurrent calls
// cost the 2-core machine little next to the server under test.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "tools/soak/soak_options.h"
#include "tools/soak/soak_stats.h"
#include "tools/soak/workload.h"

namespace qs::soak {

class LoadDriver {
 public:
  // `channels` are shared round-robin by the clients; the clients' categories
  // follow options.mix, their variants cycle through the workload's.
  LoadDriver(const Options& options, const Workload& workload,
             std::vector<std::shared_ptr<grpc::Channel>> channels, Stats* stats);
  ~LoadDriver();  // cancels what is left, stops the threads

  // Every client sends its first call; they keep going until StopIssuing.
  void Start();
  // Clients send no new call once their current one is answered.
  void StopIssuing();
  // The phase recorded for calls that finish from now on.
  void SetPhase(Phase phase) { phase_ = phase; }
  Phase phase() const { return phase_; }
  // True once no call is in flight, false if `until` came first.
  bool WaitIdle(std::chrono::steady_clock::time_point until) const;
  // Calls in flight, plus clients waiting out their pace.
  int64_t in_flight() const { return in_flight_; }
  // Calls in flight only.
  int64_t calls_in_flight() const;
  // TryCancel on every call still in flight (the last resort after WaitIdle).
  void CancelAll();
  // Clients by category, for the report.
  std::vector<int> ClientsPerCategory() const;

 private:
  struct Client;
  struct Call;
  struct Tag;
  struct Stubs;
  void Issue(Client& client);
  void StartValid(Call* call, Rng& rng);
  void StartGarbage(Call* call, Rng& rng);
  void OnFinish(Call* call);
  void Poll(int cq);

  const Options& options_;
  const Workload& workload_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  Stats* stats_;
  std::vector<std::unique_ptr<Stubs>> stubs_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::atomic<bool> issuing_{false};
  std::atomic<Phase> phase_{Phase::kWarmup};
  std::atomic<int64_t> in_flight_{0};
  mutable std::mutex calls_mu_;
  std::vector<Call*> calls_;  // in flight, guarded by calls_mu_ (for CancelAll)
};

}  // namespace qs::soak
