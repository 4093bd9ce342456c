// The one place where engine statuses become gRPC statuses.
#pragma once

#include <grpcpp/support/status.h>

#include <exception>

#include "absl/status/status.h"

namespace qs {

grpc::Status ToGrpcStatus(const absl::Status& status);

// The status for an exception caught while `doing` something for a request
// ("running the batch"): RESOURCE_EXHAUSTED for bad_alloc, else INTERNAL
// with what() — so the request is answered and the server keeps serving.
// Never throws: when the message cannot be built, the code alone.
absl::Status StatusFromException(std::exception_ptr error, const char* doing) noexcept;

}  // namespace qs
