// A MatMul of two run-time operands (attention's Q·Kᵀ and P·V) absorbs the
// Transposes around it and a scalar Div/Mul after it: oneDNN's matmul reads
// and writes strided views at the same speed as plain tensors, so the
// transposed copies (16 of them in a 4-layer BERT encoder, 5 % of a 2-thread
// int8 run) and the scaling pass are not needed. The MatMul gets
// engine-internal attributes (ops/matmul.cc; the QDQ export writes them out
// as the standard nodes again):
//   a_perm, b_perm  operand i of the product is Transpose(input i, perm)
//   alpha           the product is multiplied by alpha
//   y_perm          the output is Transpose(alpha · A·B, y_perm)
#include <algorithm>
#include <cmath>
#include <optional>

#include "engine/passes/passes.h"

namespace qs {
namespace {

bool IsRuntimeMatMul(const Graph& g, const Node& n) {
  return n.op_type == "MatMul" && n.domain.empty() && n.inputs.size() == 2 &&
         n.fused_activations.empty() && g.FindInitializer(n.inputs[0]) == nullptr &&
         g.FindInitializer(n.inputs[1]) == nullptr;
}

// A Transpose with an explicit permutation of rank >= 2 (torch always
// writes `perm`; the default reversal would need the rank).
bool IsFoldableTranspose(const Node& n) {
  if (n.op_type != "Transpose" || !n.domain.empty() || !n.HasAttr("perm")) return false;
  std::vector<int64_t> perm = n.GetInts("perm");
  if (perm.size() < 2) return false;
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// The factor a Div / Mul by a constant scalar applies to `value`, if that
// is what node `n` does (and the scalar cannot change the output's shape).
std::optional<float> ScalarFactor(const Graph& g, const Node& n, const std::string& value) {
  if (!n.domain.empty() || n.inputs.size() != 2 || !n.fused_activations.empty()) {
    return std::nullopt;
  }
  auto scalar_of = [&](const std::string& v) -> std::optional<float> {
    const Tensor* t = g.FindInitializer(v);
    if (t == nullptr || t->rank() > 1) return std::nullopt;
    return ConstantScalar(g, v);
  };
  if (n.op_type == "Div" && n.inputs[0] == value) {
    auto c = scalar_of(n.inputs[1]);
    if (c && *c != 0.f && std::isfinite(1.f / *c)) return 1.f / *c;
  }
  if (n.op_type == "Mul") {
    if (n.inputs[0] == value) return scalar_of(n.inputs[1]);
    if (n.inputs[1] == value) return scalar_of(n.inputs[0]);
  }
  return std::nullopt;
}

}  // namespace

absl::Status FoldIntoMatMul(Graph& graph) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (removed[i] || !IsRuntimeMatMul(graph, graph.nodes[i])) continue;
    // Operands read through their Transposes.
    for (int operand = 0; operand < 2; ++operand) {
      const std::string in = graph.nodes[i].inputs[operand];
      const int t = FindProducer(graph, in);
      if (t < 0 || removed[t] || !IsFoldableTranspose(graph.nodes[t]) ||
          SoleConsumer(graph, in) != static_cast<int>(i)) {
        continue;
      }
      Node& mm = graph.nodes[i];
      mm.attributes[operand == 0 ? "a_perm" : "b_perm"] = graph.nodes[t].GetInts("perm");
      mm.inputs[operand] = graph.nodes[t].inputs[0];
      removed[t] = true;
    }
    // A scalar Div/Mul, then a Transpose, after the product.
    const int s = SoleConsumer(graph, graph.nodes[i].outputs[0]);
    if (s >= 0 && !removed[s]) {
      if (auto factor = ScalarFactor(graph, graph.nodes[s], graph.nodes[i].outputs[0])) {
        Node& mm = graph.nodes[i];
        mm.attributes["alpha"] = mm.GetFloat("alpha", 1.f) * *factor;
        mm.outputs[0] = graph.nodes[s].outputs[0];
        removed[s] = true;
      }
    }
    const int t = SoleConsumer(graph, graph.nodes[i].outputs[0]);
    if (t >= 0 && !removed[t] && IsFoldableTranspose(graph.nodes[t])) {
      Node& mm = graph.nodes[i];
      mm.attributes["y_perm"] = graph.nodes[t].GetInts("perm");
      mm.outputs[0] = graph.nodes[t].outputs[0];
      removed[t] = true;
    }
  }
  EraseNodes(graph, removed);
  RemoveUnusedInitializers(graph);
  return absl::OkStatus();
}

}  // namespace qs
