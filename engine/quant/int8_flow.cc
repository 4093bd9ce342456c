#include "engine/quant/int8_flow.h"

#include <map>

#include "engine/passes/passes.h"

namespace qs::quant {
namespace {

bool IsInt8Transparent(const Node& n) {
  return n.op_type == "MaxPool" || n.op_type == "Flatten" || n.op_type == "Reshape";
}

// A GELU post-op is not scale-invariant: rescaled into output units around
// it (dnnl_util.cc), oneDNN 2.6's int8 inner product still gives outputs off
// by a few percent when the layer requantizes (measured on the BERT FFN), so
// such layers keep a float32 output and a separate QuantizeLinear.
bool HasGelu(const Node& n) {
  for (const auto& a : n.fused_activations) {
    if (a.kind == FusedActivation::Kind::kGeluErf) return true;
  }
  return false;
}

// A fused Relu, or a Clip with a non-negative lower bound, as the layer's
// last activation: its outputs are never negative.
bool NonNegativeOutput(const Node& n) {
  if (n.fused_activations.empty()) return false;
  const FusedActivation& a = n.fused_activations.back();
  return a.kind == FusedActivation::Kind::kRelu ||
         (a.kind == FusedActivation::Kind::kClip && a.alpha >= 0.f);
}

Node* ProducerOf(Graph& g, const std::string& value) {
  for (Node& n : g.nodes) {
    if (!n.outputs.empty() && n.outputs[0] == value) return &n;
  }
  return nullptr;
}

}  // namespace

absl::Status LetInt8Flow(Graph& g) {
  std::vector<std::string> removed;  // names of Quantize / Clip nodes dropped
  std::vector<Node> dequantizers;    // for float readers of a shared value
  for (Node& q : g.nodes) {
    if (q.op_type != "QuantizeLinear" || q.inputs.size() < 3) continue;
    const Tensor* scale = g.FindInitializer(q.inputs[1]);
    const Tensor* zp = g.FindInitializer(q.inputs[2]);
    // A nonzero zero point (asymmetric u8 codes of a signed range) would
    // need a destination zero point the int8 primitives lack: keep the
    // QuantizeLinear.
    if (scale == nullptr || zp == nullptr || scale->num_elements() != 1 ||
        zp->ScalarAsInt64() != 0) {
      continue;
    }
    // Optional Clip right before the Quantize (sub-8-bit activations).
    const Node* clip = nullptr;
    std::string cur = q.inputs[0];
    if (Node* p = ProducerOf(g, cur); p && p->op_type == "Clip" &&
                                      CountConsumers(g, cur) == 1) {
      clip = p;
      cur = p->inputs[0];
    }
    // The quantized value may have float readers besides this Quantize
    // (ResNet's stem: the max-pooled stem output feeds the first block's
    // conv and its residual Add). The chain then still runs int8 and those
    // readers get a DequantizeLinear of the codes: the conv writes 25.7 MB
    // of u8 instead of 102.8 MB of f32 at batch 32 (and the max-pool reads
    // that), for one dequantization of the 4x smaller pooled output. Those
    // readers then see the value as the quantized layer does: rounded to the
    // scale and saturated at the calibrated maximum. So only for u8 codes of
    // a layer whose output cannot be negative (a fused Relu; nothing is
    // clamped at 0 that was not already), and not for a graph output, which
    // callers read as float.
    const std::string shared = cur;
    const bool shared_readers = clip == nullptr && zp->dtype() == DataType::kUint8 &&
                                CountConsumers(g, cur) > 1 && !IsGraphOutput(g, cur);
    // Walk back through single-consumer int8-transparent ops.
    Node* producer = ProducerOf(g, cur);
    while (producer && IsInt8Transparent(*producer) &&
           (CountConsumers(g, cur) == 1 || (shared_readers && cur == shared))) {
      cur = producer->inputs[0];
      producer = ProducerOf(g, cur);
    }
    const bool single_reader = CountConsumers(g, cur) == 1 || (shared_readers && cur == shared);
    if (producer == nullptr || producer->domain != "quantserve" ||
        producer->GetInt("out_dtype", 1) != static_cast<int>(DataType::kFloat32) ||
        !single_reader || HasGelu(*producer) ||
        (shared_readers && !NonNegativeOutput(*producer))) {
      continue;
    }
    producer->attributes["out_dtype"] = int64_t{static_cast<int>(zp->dtype())};
    producer->attributes["out_scale"] = static_cast<float>(scale->ScalarAsDouble());
    if (clip != nullptr) {
      const Tensor* lo = g.FindInitializer(clip->inputs[1]);
      const Tensor* hi = g.FindInitializer(clip->inputs[2]);
      producer->fused_activations.push_back(
          {FusedActivation::Kind::kClip, static_cast<float>(lo->ScalarAsDouble()),
           static_cast<float>(hi->ScalarAsDouble())});
      removed.push_back(clip->name);
    }
    // Readers of the codes now read the (int8) end of the chain; its float
    // readers, a dequantization of it.
    const std::string codes = q.outputs[0], chain_end = clip ? clip->inputs[0] : q.inputs[0];
    if (shared_readers) {
      const std::string dequantized = chain_end + "/dequantized";
      // (The QuantizeLinear, which reads it too, is removed below.)
      RenameInputs(g, chain_end, dequantized);
      dequantizers.push_back(Node{chain_end + "/dequantize", "DequantizeLinear", "",
                                  {chain_end, q.inputs[1], q.inputs[2]}, {dequantized}});
    }
    RenameInputs(g, codes, chain_end);
    removed.push_back(q.name);
  }
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    if (std::find(removed.begin(), removed.end(), n.name) == removed.end()) {
      kept.push_back(std::move(n));
    }
  }
  g.nodes = std::move(kept);
  if (dequantizers.empty()) return absl::OkStatus();
  for (Node& d : dequantizers) g.nodes.push_back(std::move(d));
  return TopologicalSort(g);
}

}  // namespace qs::quant
