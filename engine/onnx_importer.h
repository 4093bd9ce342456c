// Reads an .onnx file into the engine's Graph: nodes, values, initializers
// and attributes, topologically sorted. Checks what can be checked without
// shapes (ops, opsets, dangling values, cycles); shapes are checked when the
// model is compiled.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace qs {

struct ImportOptions {
  // Files larger than this are refused before reading (protobuf's own
  // hard limit is 2 GiB).
  int64_t max_file_bytes = int64_t{2} << 30;
};

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path,
                                     const ImportOptions& options = {});
// `what` names the source in error messages.
absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes, const std::string& what);

}  // namespace qs
