// The server's YAML configuration as plain, validated structs.
//
// Loading either yields a fully validated ServerConfig or an error whose
// message reads `<file>:<line>:<col>: <key.path>: <problem>` (1-based line and
// column). All errors are InvalidArgument, except NotFound for a missing
// config file. See docs/CONFIG.md for every key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qs {

// Evaluation or calibration data.
struct DatasetConfig {
  enum class Format { kIdx, kNpy };
  Format format = Format::kIdx;
  std::string inputs;  // absolute path (relative ones resolve against the
                       // config file's directory); not checked for existence
  std::string labels;  // absolute path; required for evaluation, optional for
                       // calibration ("" when absent)
  float scale = 1.0f / 255.0f;  // float_input = raw * scale + offset
  float offset = 0.0f;
  int64_t limit = 0;  // 0 = all samples
};

struct VariantConfig {
  std::string name;  // unique within a model; [A-Za-z0-9_.-]+
  // Quantization settings come later; a variant with only a name is the
  // fp32 model.
};

struct ModelConfig {
  std::string name;             // unique; [A-Za-z0-9_.-]+
  std::string path;             // .onnx file, absolute; exists
  std::string default_variant;  // names one of `variants`
  std::optional<DatasetConfig> evaluation;
  std::vector<VariantConfig> variants;  // non-empty; default: {{"fp32"}}
  int64_t eval_batch_size = 64;         // 1..4096
};

struct ServerSection {
  std::string grpc_address = "0.0.0.0:8500";
  std::string metrics_address = "0.0.0.0:9090";
  int worker_threads = 0;    // 0 = number of cores; 0..1024
  int intra_op_threads = 1;  // oneDNN threads per run; 0..1024 (0 = all cores)
  int64_t max_message_bytes = int64_t{64} << 20;  // 1024..2147483647
};

struct ServerConfig {
  std::string source;  // the file (or name) the config came from
  ServerSection server;
  std::vector<ModelConfig> models;  // at least one; unique names
};

const char* DatasetFormatName(DatasetConfig::Format format);  // "idx", "npy"

// Reads and validates the config file at `path`. Relative paths inside it
// resolve against the file's directory.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

// For tests and fuzzing: `source` names the text in errors; relative paths
// resolve against `base_dir` (itself made absolute against the working
// directory when relative).
absl::StatusOr<ServerConfig> ParseServerConfig(const std::string& yaml,
                                               const std::string& source,
                                               const std::string& base_dir);

}  // namespace qs
