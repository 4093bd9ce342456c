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
// is what node `n` does. Rank 0 only: a [1]-shaped constant would make the
// 0-D product of two vectors 1-D. A zero or non-finite factor is not folded
// (gemm may skip the product it scales, hiding an Inf/NaN in it).
std::optional<float> ScalarFactor(const Graph& g, const Node& n, const std::string& value) {
  if (!n.domain.empty() || n.inputs.size() != 2 || !n.fused_activations.empty()) {
    return std::nullopt;
  }
  auto scalar_of = [&](const std::string& v) -> std::optional<float> {
    const Tensor* t = g.FindInitializer(v);
    if (t == nullptr || t->rank() != 0) return std::nullopt;
    return ConstantScalar(g, v);
  };
  std::optional<float> factor;
  if (n.op_type == "Div" && n.inputs[0] == value) {
    if (auto c = scalar_of(n.inputs[1]); c && *c != 0.f) factor = 1.f / *c;
  } else if (n.op_type == "Mul" && n.inputs[0] == value) {
    factor = scalar_of(n.inputs[1]);
  } else if (n.op_type == "Mul" && n.inputs[1] == value) {
    factor = scalar_of(n.inputs[0]);
  }
  if (!factor || *factor == 0.f || !std::isfinite(*factor)) return std::nullopt;
  return factor;
}

// The passes may run again on an already folded graph (a quantized variant
// compiles the optimized fp32 graph): a further Transpose composes with the
// view already there. Reading operand = Transpose(Transpose(x, t), old):
// dim i is x's dim t[old[i]].
std::vector<int64_t> ComposeOperand(const std::vector<int64_t>& old,
                                    const std::vector<int64_t>& t) {
  if (old.empty()) return t;
  std::vector<int64_t> perm(old.size());
  for (size_t i = 0; i < old.size(); ++i) perm[i] = t[old[i]];
  return perm;
}

// Writing Transpose(Transpose(product, old), t): dim i is product dim old[t[i]].
std::vector<int64_t> ComposeOutput(const std::vector<int64_t>& old, const std::vector<int64_t>& t) {
  if (old.empty()) return t;
  std::vector<int64_t> perm(t.size());
  for (size_t i = 0; i < t.size(); ++i) perm[i] = old[t[i]];
  return perm;
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
      const char* key = operand == 0 ? "a_perm" : "b_perm";
      const std::vector<int64_t> perm = graph.nodes[t].GetInts("perm");
      if (mm.HasAttr(key) && mm.GetInts(key).size() != perm.size()) continue;
      mm.attributes[key] = ComposeOperand(mm.GetInts(key), perm);
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
    if (t >= 0 && !removed[t] && IsFoldableTranspose(graph.nodes[t]) &&
        (!graph.nodes[i].HasAttr("y_perm") ||
         graph.nodes[i].GetInts("y_perm").size() == graph.nodes[t].GetInts("perm").size())) {
      Node& mm = graph.nodes[i];
      mm.attributes["y_perm"] = ComposeOutput(mm.GetInts("y_perm"), graph.nodes[t].GetInts("perm"));
      mm.outputs[0] = graph.nodes[t].outputs[0];
      removed[t] = true;
    }
  }
  EraseNodes(graph, removed);  // the pass driver drops the folded scales
  return absl::OkStatus();
}

}  // namespace qs
