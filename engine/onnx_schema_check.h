// Checks a node against the ONNX library's own operator schema for the
// model's opset: input/output counts, attribute names and types, required
// attributes. Kernels can then trust what they read from the node.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace onnx {
class NodeProto;
}

namespace qs {

// `what` prefixes error messages (e.g. the model file and node).
absl::Status CheckNodeAgainstSchema(const onnx::NodeProto& node, int64_t opset,
                                    const std::string& what);

}  // namespace qs
