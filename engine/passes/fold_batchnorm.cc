// Folds inference BatchNormalization into the preceding Conv or Gemm:
//   y = s·(conv(x) + b − mean) + beta,  s = gamma / sqrt(var + eps)
// becomes conv with weights scaled by s per output channel and a new bias.
#include <cmath>

#include "engine/passes/passes.h"

namespace qs {
namespace {

struct BnParams {
  std::vector<float> scale, shift;  // y = scale·x + shift per channel
};

std::optional<BnParams> ConstantBn(const Graph& graph, const Node& bn) {
  if (bn.inputs.size() != 5 || bn.GetInt("training_mode", 0) != 0) return std::nullopt;
  if (bn.outputs.size() > 1 && !bn.outputs[1].empty()) return std::nullopt;
  const Tensor* t[4];
  for (int i = 0; i < 4; ++i) {
    t[i] = graph.FindInitializer(bn.inputs[i + 1]);
    if (t[i] == nullptr || t[i]->dtype() != DataType::kFloat32 || t[i]->rank() != 1) {
      return std::nullopt;
    }
  }
  const int64_t c = t[0]->num_elements();
  for (int i = 1; i < 4; ++i) {
    if (t[i]->num_elements() != c) return std::nullopt;
  }
  const float eps = bn.GetFloat("epsilon", 1e-5f);
  BnParams p;
  for (int64_t i = 0; i < c; ++i) {
    float s = t[0]->data<float>()[i] / std::sqrt(t[3]->data<float>()[i] + eps);
    p.scale.push_back(s);
    p.shift.push_back(t[1]->data<float>()[i] - t[2]->data<float>()[i] * s);
  }
  return p;
}

// Rewrites `producer` (Conv or Gemm) so its output is already normalized.
bool FoldInto(Graph& graph, Node& producer, const BnParams& bn) {
  // Malformed producers (no weights, scalar weights, no channels) are left
  // alone for shape inference to reject with a proper error.
  if (!producer.HasInput(1)) return false;
  const Tensor* w = graph.FindInitializer(producer.inputs[1]);
  if (w == nullptr || w->dtype() != DataType::kFloat32 || w->rank() < 1) return false;
  const int64_t channels = static_cast<int64_t>(bn.scale.size());
  if (channels == 0) return false;
  Tensor new_w = w->Clone();
  float* wd = new_w.data<float>();
  // Channel c of the output and the stride pattern of its weights.
  int64_t rows = 0, cols = 0;
  bool channel_is_row = true;
  float alpha = 1.f, beta = 1.f;
  if (producer.op_type == "Conv") {
    if (w->shape()[0] != channels) return false;
    rows = channels;
    cols = w->num_elements() / channels;
  } else {  // Gemm: output channels are the N of B
    if (producer.GetInt("transA", 0) != 0 || w->rank() != 2) return false;
    const bool tb = producer.GetInt("transB", 0) != 0;
    rows = w->shape()[0];
    cols = w->shape()[1];
    channel_is_row = tb;
    if ((tb ? rows : cols) != channels) return false;
    alpha = producer.GetFloat("alpha", 1.f);
    beta = producer.GetFloat("beta", 1.f);
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) wd[r * cols + c] *= bn.scale[channel_is_row ? r : c];
  }
  Tensor bias(DataType::kFloat32, {channels});
  const Tensor* old_b = producer.HasInput(2) ? graph.FindInitializer(producer.inputs[2]) : nullptr;
  if (producer.HasInput(2) &&
      (old_b == nullptr ||
       (old_b->num_elements() != channels && old_b->num_elements() != 1) ||
       (old_b->rank() == 2 && old_b->shape()[0] != 1))) {
    return false;  // a runtime or row-varying bias cannot be folded
  }
  for (int64_t c = 0; c < channels; ++c) {
    float b = old_b ? beta * old_b->data<float>()[old_b->num_elements() == 1 ? 0 : c] : 0.f;
    bias.data<float>()[c] = bn.scale[c] * b + bn.shift[c];
  }
  if (producer.op_type == "Gemm") {
    // alpha scales A·B; keep it there and put the new bias in with beta = 1.
    producer.attributes["beta"] = 1.f;
    (void)alpha;
  }
  const std::string w_name = producer.name + "/bn_folded_weights";
  const std::string b_name = producer.name + "/bn_folded_bias";
  graph.initializers[w_name] = std::move(new_w);
  graph.initializers[b_name] = std::move(bias);
  producer.inputs.resize(3);
  producer.inputs[1] = w_name;
  producer.inputs[2] = b_name;
  return true;
}

}  // namespace

absl::Status FoldBatchNorm(Graph& graph) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& bn = graph.nodes[i];
    if (bn.op_type != "BatchNormalization") continue;
    auto params = ConstantBn(graph, bn);
    if (!params) continue;
    for (size_t j = 0; j < i; ++j) {
      Node& p = graph.nodes[j];
      if (removed[j] || p.outputs.empty() || p.outputs[0] != bn.inputs[0]) continue;
      if ((p.op_type != "Conv" && p.op_type != "Gemm") || !p.fused_activations.empty() ||
          CountConsumers(graph, p.outputs[0]) != 1) {
        break;
      }
      if (FoldInto(graph, p, *params)) {
        p.outputs[0] = bn.outputs[0];
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
