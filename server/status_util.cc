#include "server/status_util.h"

#include <new>
#include <string>

#include "absl/strings/str_cat.h"

namespace qs {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl's canonical codes have the same numbering as gRPC's.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status StatusFromException(std::exception_ptr error, const char* doing) noexcept {
  try {
    try {
      std::rethrow_exception(error);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat("out of memory ", doing));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("error ", doing, ": ", e.what()));
    }
  } catch (...) {
    // Unknown exceptions, or building the message threw.
  }
  return absl::InternalError("");
}

}  // namespace qs
