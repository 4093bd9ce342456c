#include "engine/quant/layer_selector.h"

#include <fnmatch.h>

#include "absl/strings/str_cat.h"

namespace qs::quant {

bool IsQuantizableLayer(const Graph& graph, const Node& node) {
  if (node.inputs.size() < 2) return false;
  const Tensor* w = graph.FindInitializer(node.inputs[1]);
  if (w == nullptr || w->dtype() != DataType::kFloat32) return false;
  if (node.op_type == "Conv") return w->rank() >= 3;
  if (node.op_type == "Gemm") {
    if (node.GetInt("transA", 0) != 0 || w->rank() != 2) return false;
    // A runtime C cannot become a bias.
    return !node.HasInput(2) || graph.IsConstant(node.inputs[2]);
  }
  if (node.op_type == "MatMul") return w->rank() == 2;
  return false;
}

namespace {

bool Matches(const LayerOverride& o, const Node& node) {
  if (!o.op.empty() && o.op != node.op_type) return false;
  if (!o.name.empty() && fnmatch(o.name.c_str(), node.name.c_str(), 0) != 0) return false;
  return true;
}

}  // namespace

absl::StatusOr<std::vector<LayerPlan>> SelectLayers(const Graph& graph,
                                                    const QuantPolicy& policy) {
  std::vector<LayerPlan> plans;
  std::vector<bool> used(policy.layers.size(), false);
  std::string names;
  for (const Node& node : graph.nodes) {
    if (!IsQuantizableLayer(graph, node)) continue;
    names += (names.empty() ? "" : ", ") + node.op_type + " '" + node.name + "'";
    LayerPlan plan{node.name, node.op_type, false, policy.weights, policy.activations};
    for (size_t i = 0; i < policy.layers.size(); ++i) {
      const LayerOverride& o = policy.layers[i];
      if (!Matches(o, node)) continue;
      used[i] = true;
      plan.fp32 = o.fp32;
      if (o.weights) plan.weights = *o.weights;
      if (o.activations) plan.activations = *o.activations;
    }
    plan.weights.max_abs_code = policy.weights.max_abs_code;
    plan.weights.mse_scale_search = true;
    plans.push_back(plan);
  }
  for (size_t i = 0; i < used.size(); ++i) {
    if (!used[i]) {
      const LayerOverride& o = policy.layers[i];
      return absl::InvalidArgumentError(absl::StrCat(
          o.location.empty() ? "layer override" : o.location, ": match {op: '", o.op,
          "', name: '", o.name, "'} matches no quantizable layer (layers: ",
          names.empty() ? "none" : names, ")"));
    }
  }
  return plans;
}

}  // namespace qs::quant
