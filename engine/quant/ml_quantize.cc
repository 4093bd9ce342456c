#include "engine/quant/ml_quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs::quant {
namespace {

bool IsTree(const Node& n) {
  return n.op_type == "TreeEnsembleClassifier" || n.op_type == "TreeEnsembleRegressor";
}
bool IsDotNode(const Node& n) {
  return n.op_type == "LinearClassifier" || n.op_type == "LinearRegressor" ||
         n.op_type == "SVMClassifier" || n.op_type == "SVMRegressor";
}

// Per-feature [min, max] of each value in `wanted` over the calibration set.
absl::StatusOr<std::map<std::string, std::vector<float>>> FeatureRanges(
    const CompiledModel& model, const Dataset& data, const std::vector<std::string>& wanted,
    int64_t batch_size) {
  std::map<std::string, std::vector<float>> ranges;
  for (const auto& v : wanted) ranges[v];
  Plan::ValueObserver observe = [&](const std::string& value, const Tensor& t) {
    auto it = ranges.find(value);
    if (it == ranges.end() || t.dtype() != DataType::kFloat32 || t.rank() < 1) return;
    const int64_t f = t.shape().back();
    auto& r = it->second;
    if (r.empty()) {
      for (int64_t i = 0; i < f; ++i) {
        r.push_back(std::numeric_limits<float>::infinity());
        r.push_back(-std::numeric_limits<float>::infinity());
      }
    }
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      const float x = t.data<float>()[i];
      if (!std::isfinite(x)) continue;
      float* lo_hi = &r[2 * (i % f)];
      lo_hi[0] = std::min(lo_hi[0], x);
      lo_hi[1] = std::max(lo_hi[1], x);
    }
  };
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t count = std::min(batch_size, data.size() - begin);
    RETURN_IF_ERROR(model.RunOrdered({data.Batch(begin, count)}, &observe).status());
  }
  for (auto& [value, r] : ranges) {
    if (r.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("calibration saw no float values for '", value, "'"));
    }
    for (size_t i = 0; i < r.size(); i += 2) {
      if (r[i] > r[i + 1]) r[i] = r[i + 1] = 0.f;  // only NaN/Inf seen
    }
  }
  return ranges;
}

}  // namespace

bool HasMlNodes(const Graph& graph) {
  return std::any_of(graph.nodes.begin(), graph.nodes.end(),
                     [](const Node& n) { return n.domain == kMlDomain; });
}

absl::StatusOr<QuantizedGraph> QuantizeMlGraph(const CompiledModel& fp32,
                                               const QuantPolicy& policy,
                                               const Dataset* calibration,
                                               int64_t batch_size) {
  QuantizedGraph q;
  q.graph = fp32.graph();
  std::vector<std::string> dot_inputs;
  for (const Node& n : q.graph.nodes) {
    if (IsDotNode(n)) dot_inputs.push_back(n.inputs[0]);
  }
  std::map<std::string, std::vector<float>> ranges;
  if (!dot_inputs.empty()) {
    if (policy.weights.bits != 8 || policy.weights.method != WeightMethod::kLinear ||
        policy.activations.bits != 8) {
      return absl::UnimplementedError(
          "ai.onnx.ml linear and SVM ops are quantized with 8-bit linear weights and 8-bit "
          "activations only (weights: {method: linear, bits: 8}, activations: {bits: 8})");
    }
    if (calibration == nullptr) {
      return absl::FailedPreconditionError("a quantized variant needs a calibration set");
    }
    ASSIGN_OR_RETURN(ranges, FeatureRanges(fp32, *calibration, dot_inputs, batch_size));
  }
  for (Node& n : q.graph.nodes) {
    LayerReport r;
    r.name = n.name;
    r.op = n.op_type;
    if (IsTree(n)) {
      const int leaves = policy.trees.leaf_bits == 32 ? 0 : policy.trees.leaf_bits;
      n.attributes["qs_threshold_bits"] = int64_t{policy.trees.threshold_bits};
      n.attributes["qs_leaf_bits"] = int64_t{leaves};
      r.quantized = true;
      r.weight_bits = policy.trees.leaf_bits;
      r.activation_bits = policy.trees.threshold_bits;
      r.method = "bins";
      r.calibration = "thresholds";
    } else if (IsDotNode(n)) {
      const auto& rg = ranges.at(n.inputs[0]);
      n.attributes["qs_weight_bits"] = int64_t{8};
      n.attributes["qs_input_ranges"] = rg;
      r.quantized = true;
      r.weight_bits = 8;
      r.activation_bits = 8;
      r.method = "linear";
      r.calibration = "minmax per feature";
      r.act_lo = rg.empty() ? 0.f : *std::min_element(rg.begin(), rg.end());
      r.act_hi = rg.empty() ? 0.f : *std::max_element(rg.begin(), rg.end());
    } else {
      continue;
    }
    q.layers.push_back(std::move(r));
  }
  return q;
}

}  // namespace qs::quant
