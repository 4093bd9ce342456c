// LayerNorm as torch exports it below opset 17 (and as BERT's code writes it):
//   u = ReduceMean(x, axes=[-1]);  d = x - u
//   y = d / Sqrt(ReduceMean(Pow(d, 2), axes=[-1]) + eps) [· gamma] [+ beta]
// becomes one LayerNormalization(x, gamma, beta, epsilon) on oneDNN.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/passes/passes.h"

namespace qs {
namespace {

bool IsLastAxisMean(const Node& n) {
  return n.op_type == "ReduceMean" && n.inputs.size() == 1 &&
         n.GetInts("axes") == std::vector<int64_t>{-1} && n.GetInt("keepdims", 1) == 1;
}

// The node at `i` if it is `op` reading `value`; the other input is
// returned in `other` (empty for unary ops).
bool Is(const Graph& g, int i, const char* op, const std::string& value,
        std::string* other = nullptr) {
  // A node carrying a fused activation (an Add + Relu) is not the bare op.
  if (i < 0 || g.nodes[i].op_type != op || !g.nodes[i].fused_activations.empty()) return false;
  const Node& n = g.nodes[i];
  if (n.inputs.size() == 1) return n.inputs[0] == value;
  if (n.inputs.size() != 2) return false;
  if (other) *other = n.inputs[0] == value ? n.inputs[1] : n.inputs[0];
  return n.inputs[0] == value || n.inputs[1] == value;
}

// A constant 1-D float vector of more than one element.
const Tensor* AffineParam(const Graph& g, const std::string& value) {
  const Tensor* t = g.FindInitializer(value);
  return t != nullptr && t->dtype() == DataType::kFloat32 && t->rank() == 1 &&
                 t->num_elements() > 1
             ? t
             : nullptr;
}

// "/enc/norm/ReduceMean" -> "/enc/norm/LayerNormalization".
std::string FusedName(const std::string& first) {
  const size_t slash = first.rfind('/');
  return (slash == std::string::npos ? first + "/" : first.substr(0, slash + 1)) +
         "LayerNormalization";
}

}  // namespace

absl::Status FuseLayerNorm(Graph& graph) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& mean = graph.nodes[i];
    if (removed[i] || !IsLastAxisMean(mean)) continue;
    const std::string& x = mean.inputs[0];
    const int sub = SoleConsumer(graph, mean.outputs[0]);
    if (sub < 0 || graph.nodes[sub].op_type != "Sub" || graph.nodes[sub].inputs[0] != x ||
        graph.nodes[sub].inputs[1] != mean.outputs[0]) {
      continue;
    }
    const std::string& d = graph.nodes[sub].outputs[0];
    // d feeds exactly a Pow(d, 2) and the final Div(d, ·).
    int pow = -1, div = -1;
    int readers = 0;
    for (size_t j = 0; j < graph.nodes.size(); ++j) {
      for (const auto& in : graph.nodes[j].inputs) {
        if (in != d) continue;
        ++readers;
        if (graph.nodes[j].op_type == "Pow" && graph.nodes[j].inputs[0] == d) pow = static_cast<int>(j);
        if (graph.nodes[j].op_type == "Div" && graph.nodes[j].inputs[0] == d) div = static_cast<int>(j);
      }
    }
    if (readers != 2 || pow < 0 || div < 0 || IsGraphOutput(graph, d) ||
        ConstantScalar(graph, graph.nodes[pow].inputs[1]) != 2.f) {
      continue;
    }
    const int var = SoleConsumer(graph, graph.nodes[pow].outputs[0]);
    if (var < 0 || !IsLastAxisMean(graph.nodes[var])) continue;
    std::string eps_value;
    const int add_eps = SoleConsumer(graph, graph.nodes[var].outputs[0]);
    if (!Is(graph, add_eps, "Add", graph.nodes[var].outputs[0], &eps_value)) continue;
    const std::optional<float> eps = ConstantScalar(graph, eps_value);
    const int sqrt = SoleConsumer(graph, graph.nodes[add_eps].outputs[0]);
    if (!eps || *eps < 0 || !Is(graph, sqrt, "Sqrt", graph.nodes[add_eps].outputs[0]) ||
        SoleConsumer(graph, graph.nodes[sqrt].outputs[0]) != div ||
        graph.nodes[div].inputs[1] != graph.nodes[sqrt].outputs[0]) {
      continue;
    }
    std::vector<int> pattern = {static_cast<int>(i), sub, pow, var, add_eps, sqrt, div};
    // Optional affine tail: · gamma, then + beta.
    std::string y = graph.nodes[div].outputs[0], param;
    const Tensor* gamma = nullptr;
    const Tensor* beta = nullptr;
    std::string gamma_name, beta_name;
    int next = SoleConsumer(graph, y);
    if (Is(graph, next, "Mul", y, &param) && (gamma = AffineParam(graph, param)) != nullptr) {
      gamma_name = param;
      pattern.push_back(next);
      y = graph.nodes[next].outputs[0];
      next = SoleConsumer(graph, y);
    }
    if (Is(graph, next, "Add", y, &param) && (beta = AffineParam(graph, param)) != nullptr &&
        (gamma == nullptr || beta->num_elements() == gamma->num_elements())) {
      beta_name = param;
      pattern.push_back(next);
      y = graph.nodes[next].outputs[0];
    }
    const int64_t c = gamma ? gamma->num_elements() : beta ? beta->num_elements() : 0;
    if (c == 0) continue;  // no affine tail: the feature count is unknown here
    const std::string name = FusedName(mean.name);
    if (gamma == nullptr) {
      gamma_name = name + "/scale";
      Tensor ones(DataType::kFloat32, {c});
      std::fill_n(ones.data<float>(), c, 1.f);
      graph.initializers[gamma_name] = ones;
    }
    Node ln;
    ln.name = name;
    ln.op_type = "LayerNormalization";
    ln.inputs = {x, gamma_name};
    if (beta != nullptr) ln.inputs.push_back(beta_name);
    ln.outputs = {y};
    ln.attributes["axis"] = int64_t{-1};
    ln.attributes["epsilon"] = *eps;
    const int last = pattern.back();
    for (int p : pattern) removed[p] = true;
    removed[last] = false;
    graph.nodes[last] = std::move(ln);
  }
  EraseNodes(graph, removed);
  return absl::OkStatus();
}

}  // namespace qs
