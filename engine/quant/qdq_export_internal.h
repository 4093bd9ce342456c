// Pieces of the QDQ exporter (qdq_export.h) that need no exporter state:
// attribute conversion, legacy-opset upgrades, reading a quantized layer's
// weights back into int8 codes, and dtype/rank propagation.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace onnx {
class NodeProto;
}

namespace qs::quant {

void SetAttr(onnx::NodeProto& node, const std::string& name, const AttributeValue& value);

// A standard node's inputs and attributes in the exported opset (>= 13).
struct UpgradedNode {
  struct NewConstant {
    size_t input;      // slot in `inputs` it fills
    std::string name;  // suggested initializer name (made unique by the caller)
    Tensor value;
  };
  std::vector<std::string> inputs;
  std::map<std::string, AttributeValue> attributes;
  std::vector<NewConstant> new_constants;
};
// Rewrites forms that changed before opset 13: Clip's min/max attributes
// (< 11) and Reshape's shape attribute (< 5) become constant inputs;
// Softmax / LogSoftmax (< 13 flatten to 2-D at `axis`) are kept only over
// the last axis of an input of known rank. Fails, naming the node, for
// forms opset 13 cannot express.
absl::StatusOr<UpgradedNode> UpgradeLegacyNode(const Node& n, int64_t opset,
                                               std::optional<int64_t> input_rank);

// A QConv / QDense layer's weights in executable form.
struct LayerWeights {
  Tensor codes;               // int8, w_shape
  std::vector<float> scales;  // one per output channel, or one
};
// Validates the node's weight inputs (packed indices, level table, scales,
// optional bias) and unpacks the codes.
absl::StatusOr<LayerWeights> ReadLayerWeights(const Graph& g, const Node& n);

// [R, C] → [C, R] (int8).
Tensor Transpose2D(const Tensor& t);

// Element type of a node's first output; `in0` / `in2` are its inputs'.
DataType OutputDtype(const Node& n, DataType in0, DataType in2);
// Rank of a node's first output if it follows from the inputs' ranks;
// `reshape_shape` is Reshape's constant shape input, if any.
std::optional<int64_t> OutputRank(const Node& n, const std::vector<std::optional<int64_t>>& ranks,
                                  const Tensor* reshape_shape);

}  // namespace qs::quant
