// Checks shared by the fuzz targets: how a handled error must look.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"

namespace qs::fuzz {

// Prints the broken property and aborts, so libFuzzer reports the input.
[[noreturn]] inline void Fail(const char* format, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] inline void Fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::fputs("FUZZ PROPERTY VIOLATED: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
  std::abort();
}

// A refused input must be refused with a reason (a non-empty message) and a
// code that blames the input, never INTERNAL or UNKNOWN.
inline void CheckError(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  if (status.message().empty()) {
    Fail("%s: error %s with an empty message", what,
         absl::StatusCodeToString(status.code()).c_str());
  }
  if (status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnknown) {
    Fail("%s: %s for bad input: %s", what, absl::StatusCodeToString(status.code()).c_str(),
         std::string(status.message()).c_str());
  }
}

}  // namespace qs::fuzz
