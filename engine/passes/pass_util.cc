#include <set>

#include "engine/passes/passes.h"
#include "engine/status_macros.h"

namespace qs {

int CountConsumers(const Graph& graph, const std::string& value) {
  int n = 0;
  for (const auto& node : graph.nodes) {
    for (const auto& in : node.inputs) n += in == value ? 1 : 0;
  }
  return n + (IsGraphOutput(graph, value) ? 1 : 0);
}

bool IsGraphOutput(const Graph& graph, const std::string& value) {
  for (const auto& out : graph.outputs) {
    if (out.name == value) return true;
  }
  return false;
}

void RenameInputs(Graph& graph, const std::string& from, const std::string& to) {
  for (auto& node : graph.nodes) {
    for (auto& in : node.inputs) {
      if (in == from) in = to;
    }
  }
}

void RemoveUnusedInitializers(Graph& graph) {
  std::set<std::string> used;
  for (const auto& node : graph.nodes) used.insert(node.inputs.begin(), node.inputs.end());
  for (const auto& out : graph.outputs) used.insert(out.name);
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();) {
    it = used.count(it->first) ? std::next(it) : graph.initializers.erase(it);
  }
}

absl::Status RunDefaultPasses(Graph& graph, const dnnl::engine& engine) {
  RETURN_IF_ERROR(RemoveIdentityOps(graph));
  RETURN_IF_ERROR(FoldConstants(graph, engine));
  RETURN_IF_ERROR(FoldBatchNorm(graph));
  RETURN_IF_ERROR(FuseActivations(graph));
  RemoveUnusedInitializers(graph);
  return absl::OkStatus();
}

}  // namespace qs
