// A gRPC call's deadline on the steady clock the batcher waits with.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <chrono>

#include "server/batcher.h"

namespace qs {

// No deadline (or one over a day away) becomes a day from now.
inline Batcher::Clock::time_point SteadyDeadline(const grpc::ServerContextBase& ctx) {
  const auto now_sys = std::chrono::system_clock::now();
  const auto now = Batcher::Clock::now();
  const auto deadline = ctx.deadline();
  if (deadline >= now_sys + std::chrono::hours(24)) return now + std::chrono::hours(24);
  return now + std::chrono::duration_cast<Batcher::Clock::duration>(deadline - now_sys);
}

// gRPC's ServerContext::IsCancelled() is also true once the call's deadline
// has passed, so a handler that gives up on a "cancelled" call may in fact
// face an expired deadline. That is DEADLINE_EXCEEDED, as the client sees it,
// not CANCELLED: the requests metric must tell deadline pressure from
// clients cancelling (found by the soak, docs/RELIABILITY.md#soak).
//
// The server's deadline is the client's remaining time counted from when the
// request arrived, so it falls later than the client's by the request's
// transit time; the client gives up first and its cancellation reaches the
// server shortly before the server's own deadline. A cancellation within
// kDeadlineSlack of the deadline is therefore the deadline's.
inline constexpr std::chrono::milliseconds kDeadlineSlack{50};

inline grpc::Status ExpiredAsDeadlineExceeded(const grpc::ServerContextBase& ctx,
                                              grpc::Status status) {
  if (status.error_code() == grpc::StatusCode::CANCELLED &&
      std::chrono::system_clock::now() + kDeadlineSlack >= ctx.deadline()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the deadline expired while the request was handled");
  }
  return status;
}

}  // namespace qs
