#include "tools/soak/soak_options.h"

namespace qs::soak {

using grpc::StatusCode;

const char* CategoryName(Category c) {
  switch (c) {
    case Category::kNormal: return "normal";
    case Category::kCancel: return "cancel";
    case Category::kDeadline: return "tiny_deadline";
    case Category::kGarbage: return "garbage";
  }
  return "?";
}

const char* GarbageKindName(GarbageKind k) {
  switch (k) {
    case GarbageKind::kWrongDtype: return "wrong_dtype";
    case GarbageKind::kWrongShape: return "wrong_shape";
    case GarbageKind::kWrongRank: return "wrong_rank";
    case GarbageKind::kUnknownModel: return "unknown_model";
    case GarbageKind::kUnknownVariant: return "unknown_variant";
    case GarbageKind::kNanInput: return "nan_input";
    case GarbageKind::kInfInput: return "inf_input";
    case GarbageKind::kHugeShape: return "huge_shape";
    case GarbageKind::kTooManyRows: return "too_many_rows";
    case GarbageKind::kBadRawLength: return "bad_raw_length";
    case GarbageKind::kRawAndTyped: return "raw_and_typed";
    case GarbageKind::kNegativeDim: return "negative_dim";
    case GarbageKind::kNoInputs: return "no_inputs";
    case GarbageKind::kUnknownInput: return "unknown_input";
    case GarbageKind::kUnknownOutput: return "unknown_output";
    case GarbageKind::kDuplicateInput: return "duplicate_input";
    case GarbageKind::kRawCountMismatch: return "raw_count_mismatch";
    case GarbageKind::kUnknownDatatype: return "unknown_datatype";
    case GarbageKind::kEmptyBatch: return "empty_batch";
    case GarbageKind::kRandomBytes: return "random_bytes";
  }
  return "?";
}

std::set<StatusCode> ExpectedGarbageCodes(GarbageKind k, bool nan_rejected) {
  switch (k) {
    case GarbageKind::kUnknownModel:
    case GarbageKind::kUnknownVariant:
      return {StatusCode::NOT_FOUND};
    case GarbageKind::kHugeShape:
    case GarbageKind::kTooManyRows:
      return {StatusCode::RESOURCE_EXHAUSTED};
    case GarbageKind::kNanInput:
    case GarbageKind::kInfInput:
      if (!nan_rejected) return {StatusCode::OK};
      return {StatusCode::INVALID_ARGUMENT};
    case GarbageKind::kEmptyBatch:
      // Zero rows are a degenerate but well-formed batch: answered with
      // zero rows of output (checked), or refused as invalid.
      return {StatusCode::OK, StatusCode::INVALID_ARGUMENT};
    case GarbageKind::kRandomBytes:
      // Bytes that are no valid message never reach the handler; the
      // server's interceptor answers INVALID_ARGUMENT (gRPC alone would say
      // INTERNAL). Bytes that happen to parse name no model (NOT_FOUND) or
      // carry a bad tensor (INVALID_ARGUMENT).
      return {StatusCode::NOT_FOUND, StatusCode::INVALID_ARGUMENT};
    default:
      return {StatusCode::INVALID_ARGUMENT};
  }
}

const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kWarmup: return "warmup";
    case Phase::kSoak: return "soak";
    case Phase::kShutdown: return "shutdown";
  }
  return "?";
}

std::set<StatusCode> InPhase(std::set<StatusCode> codes, Phase phase) {
  // Once SIGTERM is sent, a call that has not reached its handler yet is
  // refused with UNAVAILABLE (the server is draining, or gone).
  if (phase == Phase::kShutdown) codes.insert(StatusCode::UNAVAILABLE);
  return codes;
}

std::set<StatusCode> ExpectedCodes(Category category, Phase phase, bool allow_overload) {
  std::set<StatusCode> codes = {StatusCode::OK};
  switch (category) {
    case Category::kNormal: break;
    case Category::kCancel: codes.insert(StatusCode::CANCELLED); break;
    case Category::kDeadline: codes.insert(StatusCode::DEADLINE_EXCEEDED); break;
    case Category::kGarbage: return {};  // per kind
  }
  if (allow_overload) codes.insert(StatusCode::RESOURCE_EXHAUSTED);
  return InPhase(std::move(codes), phase);
}

}  // namespace qs::soak
