// Early-return helpers for absl::Status / absl::StatusOr (Debian's abseil
// 20220623 ships neither macro).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QS_CONCAT_INNER_(a, b) a##b
#define QS_CONCAT_(a, b) QS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status qs_status_ = (expr);        \
    if (!qs_status_.ok()) return qs_status_;   \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(QS_CONCAT_(qs_statusor_, __LINE__), lhs, expr)
