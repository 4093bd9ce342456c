#include "engine/quant/quantize_embeddings.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "engine/ops/quantized_layer.h"
#include "engine/ops/rowwise_table.h"
#include "engine/passes/passes.h"

namespace qs::quant {

absl::Status QuantizeEmbeddings(QuantizedGraph& q, const EmbeddingPolicy& policy) {
  if (policy.bits != 8 && policy.bits != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedding bits must be 8 or 4, not ", policy.bits));
  }
  Graph& g = q.graph;
  std::map<std::string, std::string> packed_name;  // float table -> packed table
  std::map<std::string, int64_t> float_bytes;
  for (Node& node : g.nodes) {
    if (node.op_type != "Gather" || !node.domain.empty() || node.inputs.size() != 2 ||
        node.GetInt("axis", 0) != 0) {
      continue;
    }
    const std::string table = node.inputs[0];
    const Tensor* t = g.FindInitializer(table);
    if (t == nullptr || t->dtype() != DataType::kFloat32 || t->rank() != 2) continue;
    const int64_t dim = t->shape()[1];
    auto [it, fresh] = packed_name.emplace(table, absl::StrCat(table, "/rowwise", policy.bits));
    if (fresh) {
      Tensor packed = QuantizeRowwise(*t, policy.bits);
      LayerReport r;
      r.name = table;
      r.op = "Gather";
      r.quantized = true;
      r.weight_bits = policy.bits;
      r.method = "rowwise";
      r.activation_bits = 32;
      r.weight_bytes = static_cast<int64_t>(packed.byte_size());
      r.impl = absl::StrCat("rowwise_u", policy.bits);
      r.wei_dt = absl::StrCat("u", policy.bits);
      r.dst_dt = "f32";
      q.weight_bytes += r.weight_bytes;
      float_bytes[table] = static_cast<int64_t>(t->byte_size());
      q.layers.push_back(r);
      g.initializers[it->second] = std::move(packed);
    }
    node.op_type = "QEmbedding";
    node.domain = kQuantDomain;
    node.inputs[0] = it->second;
    node.attributes.clear();
    node.attributes["bits"] = int64_t{policy.bits};
    node.attributes["dim"] = dim;
  }
  RemoveUnusedInitializers(g);
  // A float table still read by another node (tied weights) stays stored.
  for (const auto& [table, bytes] : float_bytes) {
    if (g.FindInitializer(table) == nullptr) q.weight_bytes -= bytes;
  }
  return absl::OkStatus();
}

}  // namespace qs::quant
