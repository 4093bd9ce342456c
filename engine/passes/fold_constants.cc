#include "absl/strings/str_cat.h"
#include "engine/passes/passes.h"
#include "engine/plan.h"
#include "engine/status_macros.h"

namespace qs {

absl::Status FoldConstants(Graph& graph, const dnnl::engine& engine) {
  std::vector<Node> kept;
  for (auto& node : graph.nodes) {
    bool all_const = !node.inputs.empty();
    for (const auto& in : node.inputs) all_const &= in.empty() || graph.IsConstant(in);
    bool output_is_graph_output = false;
    for (const auto& out : node.outputs) output_is_graph_output |= IsGraphOutput(graph, out);
    if (!all_const || output_is_graph_output) {
      kept.push_back(std::move(node));
      continue;
    }
    auto values = EvaluateConstantNode(node, graph, engine);
    if (!values.ok()) {
      // Leave it for the compiler, which reports the error with full context.
      kept.push_back(std::move(node));
      continue;
    }
    for (size_t i = 0, v = 0; i < node.outputs.size(); ++i) {
      if (!node.outputs[i].empty()) graph.initializers[node.outputs[i]] = (*values)[v++].Clone();
    }
  }
  graph.nodes = std::move(kept);
  return absl::OkStatus();
}

}  // namespace qs
