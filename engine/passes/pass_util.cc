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

int FindProducer(const Graph& graph, const std::string& value) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& out : graph.nodes[i].outputs) {
      if (out == value) return static_cast<int>(i);
    }
  }
  return -1;
}

int SoleConsumer(const Graph& graph, const std::string& value) {
  if (IsGraphOutput(graph, value)) return -1;
  int found = -1;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& in : graph.nodes[i].inputs) {
      if (in != value) continue;
      if (found >= 0) return -1;
      found = static_cast<int>(i);
    }
  }
  return found;
}

std::optional<float> ConstantScalar(const Graph& graph, const std::string& value) {
  const Tensor* t = graph.FindInitializer(value);
  if (t == nullptr || t->num_elements() != 1 ||
      (t->dtype() != DataType::kFloat32 && t->dtype() != DataType::kFloat64)) {
    return std::nullopt;
  }
  return static_cast<float>(t->ScalarAsDouble());
}

void EraseNodes(Graph& graph, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
}

absl::Status RunDefaultPasses(Graph& graph, const dnnl::engine& engine) {
  RETURN_IF_ERROR(RemoveIdentityOps(graph));
  RETURN_IF_ERROR(FoldConstants(graph, engine));
  RETURN_IF_ERROR(FoldBatchNorm(graph));
  RETURN_IF_ERROR(FuseMatMulBias(graph));
  RETURN_IF_ERROR(FuseLayerNorm(graph));
  RETURN_IF_ERROR(FuseGelu(graph));
  RETURN_IF_ERROR(FoldIntoMatMul(graph));
  RETURN_IF_ERROR(FuseActivations(graph));
  RemoveUnusedInitializers(graph);
  return absl::OkStatus();
}

}  // namespace qs
