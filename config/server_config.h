// The server's YAML configuration as plain, validated structs.
//
// Loading either yields a fully validated ServerConfig or an error whose
// message reads `<file>:<line>:<col>: <key.path>: <problem>` (1-based line and
// column); for a value that came from an override, the position is replaced
// by the override (`--set server.worker_threads=abc: server.worker_threads:
// ...`, `env QUANTSERVE_WORKER_THREADS=abc: server.worker_threads: ...`).
// All errors are InvalidArgument, except NotFound for a missing config file. See docs/CONFIG.md for every key and docs/POLICY.md for the
// quantization policy (variants, calibration).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/quant_policy_config.h"

namespace qs {

// Evaluation or calibration data.
struct DatasetConfig {
  enum class Format { kIdx, kNpy };
  Format format = Format::kIdx;
  std::string inputs;  // absolute path (relative ones resolve against the
                       // config file's directory); not checked for existence
  // Multi-input models (npy only): `inputs: {input name: path, ...}`, one
  // file per model input, used as stored (no scale/offset); `inputs` is then
  // empty.
  std::vector<std::pair<std::string, std::string>> named_inputs;
  std::string labels;  // absolute path; required for evaluation, optional for
                       // calibration ("" when absent)
  float scale = 1.0f / 255.0f;  // float_input = raw * scale + offset
  float offset = 0.0f;
  int64_t limit = 0;  // 0 = all samples; for calibration, the number of
                      // calibration samples
  bool operator==(const DatasetConfig&) const = default;
};

// One servable version of a model. A variant with only a name is the fp32
// model. Once loaded, a quantized variant always has both `weights` and
// `activations` (the one not given gets its defaults: 8-bit linear weights,
// 8-bit minmax activations); docs/POLICY.md describes every key.
struct VariantConfig {
  std::string name;  // unique within a model; [A-Za-z0-9_.-]+ (keep it first:
                     // VariantConfig{"fp32"} is used)
  std::optional<WeightQuantConfig> weights = std::nullopt;
  std::optional<ActivationQuantConfig> activations = std::nullopt;
  // Set only on quantized variants.
  std::optional<OptimizeConfig> optimize = std::nullopt;
  // Applied in order; for each layer the last matching override wins. Only on
  // quantized variants.
  std::vector<LayerOverrideConfig> layers = {};
  // Per-layer weight bit widths chosen by search. Implies `weights` (whose
  // `bits` then holds the largest candidate).
  std::optional<AutoBitsConfig> auto_bits = std::nullopt;
  // Row-wise embedding-table quantization; may be the variant's only key
  // (then every layer stays fp32 and no calibration set is needed).
  std::optional<EmbeddingQuantConfig> embeddings = std::nullopt;
  // Tree ensembles (ai.onnx.ml); a quantized variant without the key gets
  // TreesConfig's defaults.
  std::optional<TreesConfig> trees = std::nullopt;
  // "<file>:<line>:<col>: models[0].variants[2]" ("" for the implicit fp32
  // variant of a model without `variants`).
  std::string location = {};

  bool quantized() const {
    return weights.has_value() || activations.has_value() ||
           auto_bits.has_value() || trees.has_value();
  }
  // Neither its layers nor its embedding tables are quantized: a valid
  // drift/accuracy reference.
  bool unquantized() const { return !quantized() && !embeddings.has_value(); }
  bool operator==(const VariantConfig&) const = default;
};

// Dynamic batching of one model's requests (YAML `batching`).
struct BatchingConfig {
  int max_batch_size = 1;  // rows per run; 1 = no batching; 1..4096
  // How long the first queued request may wait for more rows; 0..1000000.
  int64_t max_queue_delay_us = 500;
  // Rows that may wait; a request that would exceed this fails with
  // RESOURCE_EXHAUSTED. 1..1048576 (1 << 20), and >= max_batch_size.
  int max_queue_rows = 1024;
  // Batches (unbatched: requests) run concurrently; 0..64. 0 = automatic:
  // 1 when batching, else enough to fill the cores (cores / intra_op_threads).
  int workers = 0;
  // Build the execution plans of batch sizes up to max_batch_size (at most
  // 32) at load, before the model is served: otherwise the first batch of
  // each size waits for its oneDNN primitives (ResNet-18: ~60 ms). Off by
  // default: each plan costs memory (its primitives' JIT code; MobileNetV2
  // w8a8 ~3.5 MB per size) that a server only pays for the sizes that form.
  bool warm_up = false;
  bool operator==(const BatchingConfig&) const = default;
};

// Live accuracy drift (YAML `drift`): sampled requests are replayed, off the
// request path, on a reference variant and the outputs compared.
struct DriftConfig {
  enum class Mode {
    kShadow,  // a request to a quantized variant is compared to the reference
    kMirror,  // a request to any variant is replayed on every other variant
  };
  double sample_rate = 0;  // fraction of requests replayed, 0..1; 0 = off
  Mode mode = Mode::kShadow;
  // The unquantized variant compared against; "" = the model's first
  // unquantized variant (drift is off when it has none).
  std::string reference;
  int queue_capacity = 64;  // sampled requests waiting; full = dropped; 1..65536
  // Request ids remembered for the Feedback RPC; 0 = Feedback is off.
  int feedback_capacity = 10000;  // 0..1048576
  bool operator==(const DriftConfig&) const = default;
};

struct ModelConfig {
  std::string name;             // unique; [A-Za-z0-9_.-]+
  std::string path;             // .onnx file, absolute; exists
  std::string default_variant;  // names one of `variants`
  std::optional<DatasetConfig> evaluation;
  // Samples for activation ranges and optimization; required when any
  // variant is quantized, and must not use the evaluation inputs.
  std::optional<DatasetConfig> calibration;
  std::vector<VariantConfig> variants;  // non-empty; default: {{"fp32"}}
  int64_t eval_batch_size = 64;         // 1..4096
  BatchingConfig batching;              // default: no batching
  DriftConfig drift;
  bool operator==(const ModelConfig&) const = default;
};

// YAML `server.tls`: serve gRPC over TLS. Paths are absolute (relative ones
// resolve against the config file's directory) and name existing, readable
// files.
struct TlsConfig {
  std::string cert_file;  // PEM certificate chain (YAML `cert`)
  std::string key_file;   // PEM private key (YAML `key`)
  // PEM CA bundle (YAML `client_ca`); when set, clients must present a
  // certificate it signed (mutual TLS). "" = no client certificates.
  std::string client_ca_file;
  bool operator==(const TlsConfig&) const = default;
};

// What to do with NaN or +-Inf in a float input tensor.
enum class NanPolicy {
  kReject,  // the request fails with INVALID_ARGUMENT
  kAllow,   // passed to the model as is
};

struct ServerSection {
  std::string grpc_address = "0.0.0.0:8500";
  std::string metrics_address = "0.0.0.0:9090";
  int worker_threads = 0;    // 0 = number of cores; 0..1024
  int intra_op_threads = 1;  // oneDNN threads per run; 0..1024 (0 = all cores)
  int64_t max_message_bytes = int64_t{64} << 20;  // 1024..2147483647
  // How long in-flight calls may still take after SIGTERM; 0..600000.
  int64_t shutdown_grace_ms = 30000;
  bool access_log = false;  // one log line per call
  std::optional<TlsConfig> tls;  // nullopt = plaintext
  // Request limits, checked before anything is allocated for a request:
  // elements of any one input tensor, 1..2147483648 (2^31) ...
  int64_t max_tensor_elements = int64_t{1} << 26;
  // ... and rows (the first dimension) of one request, 1..1048576 (1 << 20).
  int max_batch_rows = 4096;
  NanPolicy nan_policy = NanPolicy::kReject;
  // How often `quantserve serve` checks the config file and the model and
  // dataset files it names for changes, and reloads when they changed;
  // 0 = only on SIGHUP. 0..3600000.
  int64_t watch_config_ms = 0;
  // Connections older than this are closed gracefully (GOAWAY; calls in
  // flight get shutdown_grace_ms) so that clients reconnect and spread over
  // replicas added since; 0 = never. 0..86400000 (1 day).
  int64_t max_connection_age_ms = 0;
  // Calls the gRPC server handles at once (inference calls, including those
  // waiting in a batching queue, counted by the serving gate; metadata calls
  // hold a thread each); calls beyond it fail at once with
  // RESOURCE_EXHAUSTED instead of growing memory and threads without bound
  // under a flood. 0 = automatic: EffectiveMaxConcurrentCalls(). 16..65536.
  int max_concurrent_calls = 0;
  // Idle activation buffers (>= 256 KiB) the engine keeps for the next
  // runs instead of returning them to the system (engine/buffer_cache.h):
  // at most this many MiB. 0 = none kept. 0..1048576.
  int64_t activation_cache_mb = 256;
  // When non-empty, every model file (`models[].path`) must lie inside one
  // of `model_roots`, and every dataset file inside one of `data_roots`,
  // after resolving symlinks. Existing directories, absolute (relative ones
  // resolve against the config file's directory) with symlinks resolved.
  std::vector<std::string> model_roots;
  std::vector<std::string> data_roots;
  bool operator==(const ServerSection&) const = default;
};

struct ServerConfig;
// server.max_concurrent_calls, or when it is 0: 64 + 4 per core, plus, for
// every batched model, its max_queue_rows (every queued row may be its own
// call, which must not be refused before the queue itself is full).
int EffectiveMaxConcurrentCalls(const ServerConfig& config, int cores);

struct ServerConfig {
  std::string source;  // the file (or name) the config came from
  ServerSection server;
  std::vector<ModelConfig> models;  // at least one; unique names
};

const char* DatasetFormatName(DatasetConfig::Format format);  // "idx", "npy"
const char* NanPolicyName(NanPolicy policy);  // "reject", "allow"
const char* DriftModeName(DriftConfig::Mode mode);  // "shadow", "mirror"

// Settings that replace the file's. Precedence: file < env < set (a later
// `set` of the same key wins over an earlier one). They are applied to the
// YAML document before it is validated, so the usual checks apply; relative
// paths resolve against the config file's directory.
struct ConfigOverrides {
  // "key.path=value" from --set: a dotted YAML path whose list items are
  // selected by their `name` (models, variants) or, for lists without names
  // (layers), by their 0-based index, e.g.
  //   server.grpc_address=0.0.0.0:9000
  //   models.fmnist_cnn.batching.max_batch_size=16
  // The value is read as one YAML scalar (16, true, 0.5, int8, '[::]:8500';
  // empty, ~ or null for null); text that YAML reads as a list or map is
  // taken literally. Missing maps on the way are created.
  std::vector<std::string> set;
  // The environment (e.g. all of environ). Only these are read, as literal
  // strings; an empty value counts as unset:
  //   QUANTSERVE_GRPC_ADDRESS     -> server.grpc_address
  //   QUANTSERVE_METRICS_ADDRESS  -> server.metrics_address
  //   QUANTSERVE_WORKER_THREADS   -> server.worker_threads
  //   QUANTSERVE_INTRA_OP_THREADS -> server.intra_op_threads
  //   QUANTSERVE_LOG_ACCESS       -> server.access_log
  std::map<std::string, std::string> env;
};

// `set_args` plus the variables above from this process's environment.
ConfigOverrides OverridesFromProcess(const std::vector<std::string>& set_args);

// Reads and validates the config file at `path` with `overrides` applied.
// Relative paths inside it resolve against the file's directory.
absl::StatusOr<ServerConfig> LoadServerConfig(
    const std::string& path, const ConfigOverrides& overrides = {});

// For tests and fuzzing: `source` names the text in errors; relative paths
// resolve against `base_dir` (itself made absolute against the working
// directory when relative).
absl::StatusOr<ServerConfig> ParseServerConfig(
    const std::string& yaml, const std::string& source,
    const std::string& base_dir, const ConfigOverrides& overrides = {});

}  // namespace qs
