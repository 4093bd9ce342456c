#include "engine/passes/passes.h"

namespace qs {
namespace {

// Dropout is an identity only without a mask output and with training_mode
// absent or a constant false (the kernel reports every other case).
bool IsInferenceDropout(const Graph& graph, const Node& node) {
  if (node.outputs.size() > 1 && !node.outputs[1].empty()) return false;
  if (!node.HasInput(2)) return true;
  const Tensor* mode = graph.FindInitializer(node.inputs[2]);
  return mode != nullptr && mode->num_elements() == 1 && mode->ScalarAsDouble() == 0.0;
}

}  // namespace

absl::Status RemoveIdentityOps(Graph& graph) {
  std::vector<Node> kept;
  for (auto& node : graph.nodes) {
    const bool identity = node.op_type == "Identity" ||
                          (node.op_type == "Dropout" && IsInferenceDropout(graph, node));
    // A graph output keeps its producer so its name stays part of the API.
    if (!identity || node.inputs.empty() || IsGraphOutput(graph, node.outputs[0])) {
      kept.push_back(std::move(node));
      continue;
    }
    const std::string from = node.outputs[0], to = node.inputs[0];
    for (auto& other : kept) {  // sorted graph: consumers come later
      for (auto& in : other.inputs) in = in == from ? to : in;
    }
    RenameInputs(graph, from, to);
  }
  graph.nodes = std::move(kept);
  return absl::OkStatus();
}

}  // namespace qs
