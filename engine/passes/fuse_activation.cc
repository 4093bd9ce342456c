// Fuses Relu / LeakyRelu / Clip into the Conv, Gemm or MatMul producing
// their input, and Relu into an Add, where oneDNN applies them as eltwise
// post-ops (an Add of integers applies its Relu itself; Clip's float bounds
// would not be exact on integers). ResNet's residual Add + Relu was two
// passes over the block output: 2.3 ms of a 166 ms int8 batch-16 run.
#include "engine/ops/eltwise_params.h"
#include "engine/passes/passes.h"

namespace qs {
namespace {

std::optional<FusedActivation> AsFusable(const Graph& graph, const Node& node) {
  if (node.op_type == "Relu") return FusedActivation{FusedActivation::Kind::kRelu};
  if (node.op_type == "LeakyRelu") {
    return FusedActivation{FusedActivation::Kind::kLeakyRelu, node.GetFloat("alpha", 0.01f)};
  }
  if (node.op_type == "Clip") {
    std::vector<const Tensor*> consts;
    for (const auto& in : node.inputs) {
      consts.push_back(in.empty() ? nullptr : graph.FindInitializer(in));
    }
    auto p = GetEltwiseParams(node, consts, graph.opset);
    if (!p.ok()) return std::nullopt;
    return FusedActivation{FusedActivation::Kind::kClip, p->alpha, p->beta};
  }
  return std::nullopt;
}

}  // namespace

absl::Status FuseActivations(Graph& graph) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& act = graph.nodes[i];
    auto fused = AsFusable(graph, act);
    if (!fused || act.inputs.empty()) continue;
    for (size_t j = 0; j < i; ++j) {
      Node& p = graph.nodes[j];
      if (removed[j] || p.outputs.empty() || p.outputs[0] != act.inputs[0]) continue;
      const bool fusable_producer =
          p.op_type == "Conv" || p.op_type == "Gemm" || p.op_type == "MatMul" ||
          (p.op_type == "Add" && fused->kind == FusedActivation::Kind::kRelu &&
           p.fused_activations.empty());
      if (fusable_producer && CountConsumers(graph, p.outputs[0]) == 1) {
        p.fused_activations.push_back(*fused);
        p.outputs[0] = act.outputs[0];
        removed[i] = true;
      }
      break;
    }
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
  return absl::OkStatus();
}

}  // namespace qs
