// quantserve-soak: options, client categories and the garbage request kinds,
// each with the gRPC codes it may legitimately end with.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace qs::soak {

// What a client does on every call.
enum class Category {
  kNormal,    // valid requests with a generous deadline; answers are checked
  kCancel,    // valid requests, TryCancel after a random short delay
  kDeadline,  // valid requests with a 0..2 ms deadline
  kGarbage,   // invalid requests (GarbageKind)
};
inline constexpr int kCategoryCount = 4;
const char* CategoryName(Category c);  // "normal", "cancel", "tiny_deadline", "garbage"

// Invalid requests. Each has the codes the server must answer it with.
enum class GarbageKind {
  kWrongDtype,       // INT64 data for the FP32 input
  kWrongShape,       // [B,1,28,27]
  kWrongRank,        // [B,784]
  kUnknownModel,     // a random model name
  kUnknownVariant,   // a random variant name
  kNanInput,         // a NaN among the pixels
  kInfInput,         // +Inf among the pixels
  kHugeShape,        // more elements than server.max_tensor_elements, no data
  kTooManyRows,      // max_batch_rows + 1 real rows
  kBadRawLength,     // raw_data one float short
  kRawAndTyped,      // raw_data and float_data together (Predict) / raw + contents (KServe)
  kNegativeDim,      // shape [-1,1,28,28]
  kNoInputs,         // no input tensor at all
  kUnknownInput,     // an input name the model does not have
  kUnknownOutput,    // an output name the model does not have
  kDuplicateInput,   // the input given twice
  kRawCountMismatch, // KServe: two raw_input_contents for one input
  kUnknownDatatype,  // KServe "FP16" / v1 DATA_TYPE_UNSPECIFIED
  kEmptyBatch,       // shape [0,1,28,28]: zero rows (OK with zero rows out, or refused)
  kRandomBytes,      // random bytes as the request message (generic stub)
};
inline constexpr int kGarbageKindCount = 20;
const char* GarbageKindName(GarbageKind k);
// The codes a correct server answers `k` with (outside the shutdown phase).
std::set<grpc::StatusCode> ExpectedGarbageCodes(GarbageKind k, bool nan_rejected);

// Where the soak is in its run; the expected codes depend on it.
enum class Phase {
  kWarmup,    // load on, RSS not yet the baseline
  kSoak,      // measured
  kShutdown,  // SIGTERM sent with load on: UNAVAILABLE is also a clean answer
};
const char* PhaseName(Phase p);

// The codes a call of `category` may end with in `phase` (garbage: see
// ExpectedGarbageCodes).
std::set<grpc::StatusCode> ExpectedCodes(Category category, Phase phase, bool allow_overload);
// Adds UNAVAILABLE in the shutdown phase (for garbage codes).
std::set<grpc::StatusCode> InPhase(std::set<grpc::StatusCode> codes, Phase phase);

struct Options {
  // Target: a running server, or one started here.
  std::string address;          // HOST:PORT (loopback)
  std::string metrics_address;  // HOST:PORT of /metrics (optional with --address)
  std::string serve_binary;     // --serve: path of `quantserve`
  std::string config;           // --config for --serve
  std::vector<std::string> set;  // extra --set for the served process
  std::string server_log;       // where the child's output goes ("" = a temp file)
  double startup_timeout_s = 300;

  // Workload.
  std::string model;                  // "" = the first served model
  std::vector<std::string> variants;  // "" = all of the model's variants
  int clients = 32;
  int connections = 4;
  int cq_threads = 2;
  // Shares of normal, cancel, tiny-deadline and garbage clients.
  std::vector<double> mix = {0.55, 0.15, 0.15, 0.15};
  int max_rows = 8;         // rows per valid request: 1..max_rows
  int64_t timeout_ms = 10000;  // deadline of normal / cancel calls
  double cancel_max_ms = 5;    // TryCancel after 0..cancel_max_ms
  double tiny_deadline_max_ms = 2;  // deadlines of 0..this
  // Cancel, tiny-deadline and garbage clients start a call at most every
  // pace_ms (normal clients wait for their answers anyway). 0 = no pacing:
  // those clients then send as fast as the client machine can, a flood
  // (docs/RELIABILITY.md#soak).
  double pace_ms = 10;
  bool allow_overload = false;  // RESOURCE_EXHAUSTED is acceptable for valid calls
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int images = 512;  // test images in the pool (and references per variant)
  uint64_t seed = 1;
  // Limits the garbage kinds aim at; from the config with --serve.
  int64_t max_batch_rows = 4096;
  int64_t max_tensor_elements = int64_t{1} << 26;
  bool nan_rejected = true;  // server.nan_policy: reject

  // Before the warm-up, every variant answers one request of each size
  // 0..prime_rows alone, so that the plan (and oneDNN primitive) cache holds
  // every batch size the batcher can form before the RSS baseline. -1: the
  // largest max_batch_size of the config with --serve, else max_rows.
  int prime_rows = -1;

  // Timing.
  double warmup_s = 15;
  double duration_s = 60;
  double interval_s = 10;
  bool shutdown_under_load = true;  // --serve only: SIGTERM with load on at the end
  double shutdown_load_s = 2;       // load before the SIGTERM
  int64_t shutdown_grace_ms = 30000;  // from the config with --serve

  // Checks.
  double rss_growth_limit_pct = 5;
  double logit_tolerance = 0.05;  // |logit - reference| allowed for a valid answer
  int fd_growth_limit = 32;

  bool json = false;
};

}  // namespace qs::soak
