#include "engine/quant/quantize_graph.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "engine/ops/dense.h"
#include "engine/ops/quantized_layer.h"
#include "engine/passes/passes.h"
#include "engine/quant/int8_flow.h"
#include "engine/quant/weight_optimizer.h"
#include "engine/status_macros.h"

namespace qs::quant {
namespace {

struct ActQuant {
  DataType dtype = DataType::kUint8;
  float scale = 1.f;
  int zero_point = 0;  // nonzero only for asymmetric u8 codes of a signed range
  float lo = 0, hi = 0;
};

// Unsigned ranges get u8 codes with zero point 0. Signed ones get s8 codes
// (symmetric) for padded convolutions, whose zero padding must stay code 0,
// and asymmetric u8 codes with a zero point for dense layers and unpadded
// convolutions (`asymmetric_ok`): oneDNN 2.6 on AVX2 runs u8×s8 natively,
// while s8×s8 goes through gemm_s8s8s32's shift-and-compensate path (~20 %
// of a BERT encoder's int8 run was that C++ code) or slower s8 conv kernels.
// The zero point is folded into the bias (MakeInt8Epilogue), since the
// primitives take no runtime source zero point.
absl::StatusOr<ActQuant> ChooseActivationQuant(const LayerInputStats& stats,
                                               const ActivationPolicy& policy,
                                               bool asymmetric_ok) {
  CalibrationSpec spec;
  spec.method = policy.calibration;
  spec.percentile = policy.percentile;
  spec.bits = policy.bits;
  spec.is_unsigned = stats.histogram.min() >= 0.f;
  ASSIGN_OR_RETURN(ActivationRange range, ChooseRange(stats.histogram, spec));
  ActQuant q;
  q.lo = range.lo;
  q.hi = range.hi;
  const float levels = static_cast<float>((1 << policy.bits) - 1);
  if (spec.is_unsigned) {
    q.dtype = DataType::kUint8;
    q.scale = range.hi / levels;
  } else if (asymmetric_ok && range.hi > range.lo) {
    q.dtype = DataType::kUint8;
    const float lo = std::min(range.lo, 0.f), hi = std::max(range.hi, 0.f);
    q.scale = (hi - lo) / levels;
    q.zero_point = static_cast<int>(std::clamp(std::nearbyint(-lo / q.scale), 0.f, levels));
  } else {
    q.dtype = DataType::kInt8;
    q.scale = std::max(std::fabs(range.lo), std::fabs(range.hi)) /
              static_cast<float>((1 << (policy.bits - 1)) - 1);
  }
  if (!(q.scale > 0.f) || !std::isfinite(q.scale)) {
    q.scale = 1.f;
    q.zero_point = 0;
  }
  return q;
}

// The layer's float weights as [OC, ...] (conv) or [N, K] (dense), and its
// bias, with Gemm's alpha/beta/transB folded in.
struct FloatLayer {
  Tensor weights;
  std::vector<float> bias;
  std::string reason;  // non-empty: cannot be quantized
};

FloatLayer ExtractFloatLayer(const Graph& g, const Node& n) {
  FloatLayer f;
  const Tensor& w = *g.FindInitializer(n.inputs[1]);
  if (n.op_type == "Conv") {
    f.weights = w;
    if (n.HasInput(2)) {
      const Tensor* b = g.FindInitializer(n.inputs[2]);
      if (b == nullptr) return {Tensor(), {}, "runtime bias"};
      f.bias.assign(b->data<float>(), b->data<float>() + b->num_elements());
    }
    return f;
  }
  const bool gemm = n.op_type == "Gemm";
  const bool tb = gemm && n.GetInt("transB", 0) != 0;
  f.weights = TransposedScaled(w, tb, gemm ? n.GetFloat("alpha", 1.f) : 1.f);
  if (!gemm && n.HasInput(2)) {  // MatMul with a fused bias (passes/fuse_matmul_bias.cc)
    const Tensor* b = g.FindInitializer(n.inputs[2]);
    if (b == nullptr) return {Tensor(), {}, "runtime bias"};
    f.bias.assign(b->data<float>(), b->data<float>() + b->num_elements());
  }
  if (gemm && n.HasInput(2)) {
    const Tensor* c = g.FindInitializer(n.inputs[2]);
    const int64_t cols = f.weights.shape()[0];
    if (c == nullptr || (c->num_elements() != cols && c->num_elements() != 1) ||
        (c->rank() == 2 && c->shape()[0] != 1)) {
      return {Tensor(), {}, "C is not a per-column bias"};
    }
    const float beta = n.GetFloat("beta", 1.f);
    for (int64_t j = 0; j < cols; ++j) {
      f.bias.push_back(beta * c->data<float>()[c->num_elements() == 1 ? 0 : j]);
    }
  }
  return f;
}

Tensor Scalar(DataType dtype, float value) {
  Tensor t(dtype, {});
  switch (dtype) {
    case DataType::kFloat32: t.data<float>()[0] = value; break;
    case DataType::kUint8: t.data<uint8_t>()[0] = static_cast<uint8_t>(value); break;
    case DataType::kInt8: t.data<int8_t>()[0] = static_cast<int8_t>(value); break;
    default: break;
  }
  return t;
}

}  // namespace

absl::StatusOr<QuantizedGraph> QuantizeGraph(const Graph& fp32, const std::vector<LayerPlan>& plans,
                                             const CalibrationStats& stats,
                                             const std::optional<OptimizePolicy>& optimize) {
  QuantizedGraph out;
  out.graph = fp32;
  Graph& g = out.graph;
  std::vector<Node> new_nodes;
  std::map<std::string, std::string> quantized_inputs;  // "value|dtype|scale" -> codes value
  for (Node& node : g.nodes) {
    auto plan = std::find_if(plans.begin(), plans.end(),
                             [&](const LayerPlan& p) { return p.node == node.name; });
    if (plan == plans.end()) {
      new_nodes.push_back(node);
      continue;
    }
    LayerReport report;
    report.name = node.name;
    report.op = node.op_type;
    FloatLayer f = ExtractFloatLayer(g, node);
    const LayerInputStats* in_stats = stats.ForLayer(node.name);
    report.reason = plan->fp32 ? "policy: fp32" : f.reason;
    if (report.reason.empty() && in_stats == nullptr) report.reason = "no calibration data";
    if (!report.reason.empty()) {
      out.layers.push_back(report);
      new_nodes.push_back(node);
      continue;
    }
    ASSIGN_OR_RETURN(ActQuant act, ChooseActivationQuant(*in_stats, plan->activations,
                                                         /*asymmetric_ok=*/SeesNoPadding(node)));
    auto rtn = QuantizeWeights(f.weights, plan->weights);
    if (!rtn.ok()) {
      return absl::Status(rtn.status().code(),
                          absl::StrCat(node.Describe(), ": ", rtn.status().message()));
    }
    QuantizedWeights qw = std::move(*rtn);
    const bool grouped = node.GetInt("group", 1) != 1;
    if (optimize && !grouped && in_stats->rows.num_elements() > 0) {
      OptimizePolicy policy = *optimize;
      // Cross-entropy needs logits: only the layer producing a model output
      // (the classifier head) has them; every other layer reconstructs its
      // output with mse.
      if (policy.loss == Loss::kCrossEntropy && !IsGraphOutput(g, node.outputs[0])) {
        policy.loss = Loss::kMse;
      }
      const int64_t oc = f.weights.shape()[0];
      Tensor w2d = f.weights.Reshaped({oc, f.weights.num_elements() / oc});
      LayerSamples samples{in_stats->rows, f.bias};
      ASSIGN_OR_RETURN(OptimizeResult opt,
                       OptimizeLayerWeights(w2d, qw, plan->weights, samples, policy));
      report.optimizer = absl::StrCat(OptimizerName(policy.algorithm), "/", LossName(policy.loss));
      report.loss_rtn = opt.initial_loss;
      report.loss_optimized = opt.final_loss;
      qw = std::move(opt.weights);
    }
    // Quantize the layer's input (shared by layers reading the same value
    // with the same parameters).
    const std::string key = absl::StrCat(node.inputs[0], "|", static_cast<int>(act.dtype), "|",
                                         act.scale, "|", act.zero_point, "|",
                                         plan->activations.bits);
    std::string codes = quantized_inputs[key];
    if (codes.empty()) {
      codes = absl::StrCat(node.inputs[0], "/q", quantized_inputs.size());
      quantized_inputs[key] = codes;
      std::string source = node.inputs[0];
      if (plan->activations.bits < 8) {  // clip to the calibrated range first
        Node clip{absl::StrCat(codes, "/clip"), "Clip", "", {source, codes + "/clip_lo",
                  codes + "/clip_hi"}, {codes + "/clipped"}};
        g.initializers[codes + "/clip_lo"] = Scalar(DataType::kFloat32, act.lo);
        g.initializers[codes + "/clip_hi"] = Scalar(DataType::kFloat32, act.hi);
        new_nodes.push_back(clip);
        source = codes + "/clipped";
      }
      Node q{absl::StrCat(codes, "/quantize"), "QuantizeLinear", "",
             {source, codes + "/scale", codes + "/zero_point"}, {codes}};
      g.initializers[codes + "/scale"] = Scalar(DataType::kFloat32, act.scale);
      g.initializers[codes + "/zero_point"] = Scalar(act.dtype, static_cast<float>(act.zero_point));
      new_nodes.push_back(q);
    }
    Node qnode;
    qnode.name = node.name;
    qnode.op_type = node.op_type == "Conv" ? "QConv" : "QDense";
    qnode.domain = kQuantDomain;
    qnode.outputs = node.outputs;
    qnode.fused_activations = node.fused_activations;
    if (node.op_type == "Conv") qnode.attributes = node.attributes;
    const std::string prefix = node.name + "/q";
    const int64_t channels = static_cast<int64_t>(qw.scales.size());
    g.initializers[prefix + "packed"] = Tensor::FromVector<uint8_t>(
        {static_cast<int64_t>(qw.packed.size())}, qw.packed);
    g.initializers[prefix + "levels"] = Tensor::FromVector<int8_t>(
        {channels, int64_t{1} << qw.bits}, qw.level_codes);
    g.initializers[prefix + "scales"] = Tensor::FromVector<float>({channels}, qw.scales);
    qnode.inputs = {codes, prefix + "packed", prefix + "levels", prefix + "scales"};
    if (!f.bias.empty()) {
      g.initializers[prefix + "bias"] =
          Tensor::FromVector<float>({static_cast<int64_t>(f.bias.size())}, f.bias);
      qnode.inputs.push_back(prefix + "bias");
    }
    qnode.attributes["x_scale"] = act.scale;
    if (act.zero_point != 0) qnode.attributes["x_zero_point"] = int64_t{act.zero_point};
    qnode.attributes["w_bits"] = int64_t{qw.bits};
    qnode.attributes["w_method"] = std::string(WeightMethodName(qw.method));
    qnode.attributes["w_shape"] = f.weights.shape();
    qnode.attributes["out_dtype"] = int64_t{static_cast<int>(DataType::kFloat32)};
    qnode.attributes["out_scale"] = 1.f;
    new_nodes.push_back(qnode);

    report.quantized = true;
    report.weight_bits = qw.bits;
    report.method = WeightMethodName(qw.method);
    report.activation_bits = plan->activations.bits;
    report.calibration = CalibrationMethodName(plan->activations.calibration);
    report.act_lo = act.lo;
    report.act_hi = act.hi;
    report.weight_bytes = qw.storage_bytes() + static_cast<int64_t>(f.bias.size()) * 4;
    report.grid_mapping_mse = qw.grid_mapping_mse;
    out.layers.push_back(report);
  }
  g.nodes = std::move(new_nodes);
  RETURN_IF_ERROR(LetInt8Flow(g));
  RemoveUnusedInitializers(g);
  // Stored size: quantized layers as reported, everything else as it is.
  std::set<std::string> quantized_storage;
  for (const auto& l : out.layers) {
    if (!l.quantized) continue;
    out.weight_bytes += l.weight_bytes;
    for (const char* s : {"packed", "levels", "scales", "bias"}) {
      quantized_storage.insert(l.name + "/q" + s);
    }
  }
  for (const auto& [name, t] : g.initializers) {
    if (!quantized_storage.count(name)) out.weight_bytes += t.byte_size();
  }
  return out;
}

}  // namespace qs::quant
