// The exact GELU as BERT's code writes it (and torch exports it below
// opset 20), y = x · 0.5 · (1 + erf(x / √2)), in either association:
//   A: Mul(Mul(x, 0.5), Add(Erf(Div(x, √2)), 1))
//   B: Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)
// (Div by √2 or Mul by 1/√2; operands of Add/Mul in any order) becomes a
// oneDNN gelu_erf post-op of the MatMul/Gemm/Conv producing x, or a Gelu
// node when x has another producer or other readers.
#include <cmath>

#include "engine/passes/passes.h"

namespace qs {
namespace {

bool Near(std::optional<float> v, double want) {
  return v && std::fabs(*v - want) <= 1e-4 * std::fabs(want);
}

// The other input of a binary node reading `value`, or "" if it does not.
std::string OtherInput(const Node& n, const std::string& value) {
  if (n.inputs.size() != 2) return "";
  if (n.inputs[0] == value) return n.inputs[1];
  if (n.inputs[1] == value) return n.inputs[0];
  return "";
}

struct GeluMatch {
  std::string x, y;
  std::vector<int> nodes;  // the pattern's nodes; the last produces y
};

std::optional<GeluMatch> MatchGelu(const Graph& g, int erf) {
  const Node& e = g.nodes[erf];
  if (e.inputs.size() != 1) return std::nullopt;
  const int scale = FindProducer(g, e.inputs[0]);
  if (scale < 0 || SoleConsumer(g, e.inputs[0]) != erf) return std::nullopt;
  const Node& s = g.nodes[scale];
  if (s.inputs.size() != 2) return std::nullopt;
  const std::string x = s.inputs[0];
  const std::optional<float> k = ConstantScalar(g, s.inputs[1]);
  if (!((s.op_type == "Div" && Near(k, std::sqrt(2.0))) ||
        (s.op_type == "Mul" && Near(k, std::sqrt(0.5))))) {
    return std::nullopt;
  }
  const int plus = SoleConsumer(g, e.outputs[0]);
  if (plus < 0 || g.nodes[plus].op_type != "Add" || !g.nodes[plus].fused_activations.empty() ||
      !Near(ConstantScalar(g, OtherInput(g.nodes[plus], e.outputs[0])), 1.0)) {
    return std::nullopt;
  }
  const std::string& p = g.nodes[plus].outputs[0];
  const int mul = SoleConsumer(g, p);
  if (mul < 0 || g.nodes[mul].op_type != "Mul") return std::nullopt;
  const std::string other = OtherInput(g.nodes[mul], p);
  GeluMatch m{x, "", {scale, erf, plus, mul}};
  if (other == x) {  // B: (x · (1 + erf)) · 0.5
    const std::string& xp = g.nodes[mul].outputs[0];
    const int half = SoleConsumer(g, xp);
    if (half < 0 || g.nodes[half].op_type != "Mul" ||
        !Near(ConstantScalar(g, OtherInput(g.nodes[half], xp)), 0.5)) {
      return std::nullopt;
    }
    m.nodes.push_back(half);
  } else {  // A: (x · 0.5) · (1 + erf)
    const int half = FindProducer(g, other);
    if (half < 0 || g.nodes[half].op_type != "Mul" || SoleConsumer(g, other) != mul ||
        OtherInput(g.nodes[half], x).empty() ||
        !Near(ConstantScalar(g, OtherInput(g.nodes[half], x)), 0.5)) {
      return std::nullopt;
    }
    m.nodes.insert(m.nodes.begin(), half);
  }
  m.y = g.nodes[m.nodes.back()].outputs[0];
  return m;
}

}  // namespace

absl::Status FuseGelu(Graph& graph) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (removed[i] || graph.nodes[i].op_type != "Erf") continue;
    std::optional<GeluMatch> m = MatchGelu(graph, static_cast<int>(i));
    if (!m) continue;
    bool overlaps = false;
    for (int n : m->nodes) overlaps |= removed[n];
    if (overlaps) continue;
    const int producer = FindProducer(graph, m->x);
    const bool fusable =
        producer >= 0 && !removed[producer] &&
        (graph.nodes[producer].op_type == "MatMul" || graph.nodes[producer].op_type == "Gemm" ||
         graph.nodes[producer].op_type == "Conv") &&
        graph.nodes[producer].outputs[0] == m->x && CountConsumers(graph, m->x) == 2;
    for (int n : m->nodes) removed[n] = true;
    if (fusable) {
      Node& p = graph.nodes[producer];
      p.fused_activations.push_back({FusedActivation::Kind::kGeluErf});
      p.outputs[0] = m->y;
    } else {
      const int last = m->nodes.back();
      Node gelu;
      gelu.name = graph.nodes[i].name + "/Gelu";
      gelu.op_type = "Gelu";
      gelu.inputs = {m->x};
      gelu.outputs = {m->y};
      graph.nodes[last] = std::move(gelu);
      removed[last] = false;
    }
  }
  EraseNodes(graph, removed);
  return absl::OkStatus();
}

}  // namespace qs
