// Linear layers as torch exports them, MatMul(x, W[K, N]) followed by
// Add(·, b[N]) with constants W and b, become one MatMul(x, W, b): one
// oneDNN inner product with a bias (and, quantized, one int8 layer with the
// bias in its accumulator) instead of a product and a broadcast Add.
#include "engine/passes/passes.h"

namespace qs {

absl::Status FuseMatMulBias(Graph& graph) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& mm = graph.nodes[i];
    if (mm.op_type != "MatMul" || mm.inputs.size() != 2 || !mm.fused_activations.empty()) {
      continue;
    }
    const Tensor* w = graph.FindInitializer(mm.inputs[1]);
    if (w == nullptr || w->rank() != 2 || w->dtype() != DataType::kFloat32) continue;
    const int a = SoleConsumer(graph, mm.outputs[0]);
    if (a < 0 || graph.nodes[a].op_type != "Add" || graph.nodes[a].inputs.size() != 2 ||
        !graph.nodes[a].fused_activations.empty()) {
      continue;
    }
    const Node& add = graph.nodes[a];
    const std::string& other = add.inputs[0] == mm.outputs[0] ? add.inputs[1] : add.inputs[0];
    const Tensor* b = graph.FindInitializer(other);
    // Only a 1-D [N] bias: a higher-rank one could raise the output's rank.
    if (b == nullptr || b->dtype() != DataType::kFloat32 || b->rank() != 1 ||
        b->num_elements() != w->shape()[1]) {
      continue;
    }
    mm.inputs.push_back(other);
    mm.outputs[0] = add.outputs[0];
    removed[a] = true;
  }
  EraseNodes(graph, removed);
  return absl::OkStatus();
}

}  // namespace qs
