// A gRPC call's deadline on the steady clock the batcher waits with.
#pragma once

#include <grpcpp/server_context.h>

#include <chrono>

#include "server/batcher.h"

namespace qs {

// No deadline (or one over a day away) becomes a day from now.
inline Batcher::Clock::time_point SteadyDeadline(const grpc::ServerContext& ctx) {
  const auto now_sys = std::chrono::system_clock::now();
  const auto now = Batcher::Clock::now();
  const auto deadline = ctx.deadline();
  if (deadline >= now_sys + std::chrono::hours(24)) return now + std::chrono::hours(24);
  return now + std::chrono::duration_cast<Batcher::Clock::duration>(deadline - now_sys);
}

}  // namespace qs
