#include "engine/quant/qdq_export.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "engine/onnx_tensor.h"
#include "engine/ops/quantized_layer.h"
#include "engine/quant/qdq_export_internal.h"
#include "engine/status_macros.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace qs::quant {
namespace {

constexpr int64_t kMinExportOpset = 13;  // per-axis DequantizeLinear

Tensor ScalarF(float v) { return Tensor::FromVector<float>({}, {v}); }

// A quantized layer's input zero point as the DequantizeLinear scalar.
Tensor XZeroPoint(DataType type, int64_t zero_point) {
  if (type == DataType::kUint8) {
    return Tensor::FromVector<uint8_t>({}, {static_cast<uint8_t>(zero_point)});
  }
  return Tensor(type, {});  // s8 codes are symmetric
}

class Exporter {
 public:
  Exporter(const Graph& g, int64_t opset, onnx::GraphProto& out) : g_(g), opset_(opset), out_(out) {
    for (const auto& v : g.inputs) Reserve(v.name, v.dtype, static_cast<int64_t>(v.shape.size()));
    for (const auto& [name, t] : g.initializers) Reserve(name, t.dtype(), t.rank());
    for (const auto& n : g.nodes) {
      node_names_.insert(n.name);
      for (const auto& o : n.outputs) names_.insert(o);
    }
  }

  absl::Status Run() {
    for (const Node& n : g_.nodes) {
      if (n.domain == kQuantDomain && (n.op_type == "QConv" || n.op_type == "QDense")) {
        RETURN_IF_ERROR(EmitQuantized(n));
      } else if (n.domain.empty()) {
        RETURN_IF_ERROR(EmitStandard(n));
      } else {
        return absl::UnimplementedError(absl::StrCat(n.Describe(), ": op '", n.domain, ".",
                                                     n.op_type, "' has no standard ONNX form"));
      }
      Track(n);
    }
    WriteInitializers();
    for (const auto& v : g_.inputs) WriteValueInfo(v, v.dtype, out_.add_input());
    for (const auto& v : g_.outputs) {
      const DataType tracked = DtypeOf(v.name);
      WriteValueInfo(v, tracked == DataType::kUndefined ? v.dtype : tracked, out_.add_output());
    }
    return absl::OkStatus();
  }

 private:
  void Reserve(const std::string& name, DataType dtype, int64_t rank) {
    names_.insert(name);
    dtype_[name] = dtype;
    rank_[name] = rank;
  }
  std::string Fresh(std::set<std::string>& used, const std::string& base) {
    std::string name = base;
    for (int i = 1; used.count(name); ++i) name = absl::StrCat(base, "_", i);
    used.insert(name);
    return name;
  }
  std::string FreshValue(const std::string& base) { return Fresh(names_, base); }
  std::string AddInit(const std::string& base, Tensor t) {
    const std::string name = FreshValue(base);
    Reserve(name, t.dtype(), t.rank());
    new_inits_[name] = std::move(t);
    return name;
  }
  DataType DtypeOf(const std::string& v) const {
    auto it = dtype_.find(v);
    return it == dtype_.end() ? DataType::kUndefined : it->second;
  }
  std::optional<int64_t> RankOf(const std::string& v) const {
    auto it = rank_.find(v);
    return it == rank_.end() ? std::nullopt : std::optional<int64_t>(it->second);
  }
  // Node names are kept for existing nodes and made unique for new ones.
  onnx::NodeProto* AddNode(const std::string& name, const std::string& op,
                           const std::vector<std::string>& inputs,
                           const std::vector<std::string>& outputs, bool fresh_name = true) {
    onnx::NodeProto* p = out_.add_node();
    p->set_name(fresh_name ? Fresh(node_names_, name) : name);
    p->set_op_type(op);
    std::vector<std::string> in = inputs;
    while (!in.empty() && in.back().empty()) in.pop_back();  // trailing omitted inputs
    for (const auto& i : in) p->add_input(i);
    for (const auto& o : outputs) p->add_output(o);
    return p;
  }

  // GELU written out as x · 0.5 · (1 + erf(x / √2)) (ONNX has Gelu only
  // from opset 20).
  void EmitGelu(const std::string& base, const std::string& x, const std::string& y) {
    const std::string a = FreshValue(base + "/scaled"), e = FreshValue(base + "/erf"),
                      p = FreshValue(base + "/one_plus"), xp = FreshValue(base + "/x_one_plus");
    AddNode(base + "/Div", "Div", {x, AddInit(base + "/sqrt2", ScalarF(std::sqrt(2.f)))}, {a});
    AddNode(base + "/Erf", "Erf", {a}, {e});
    AddNode(base + "/Add", "Add", {e, AddInit(base + "/one", ScalarF(1.f))}, {p});
    AddNode(base + "/Mul", "Mul", {x, p}, {xp});
    AddNode(base + "/Mul_half", "Mul", {xp, AddInit(base + "/half", ScalarF(0.5f))}, {y});
  }

  // A MatMul that reads transposed operands and writes a scaled, transposed
  // product (passes/fold_into_matmul.cc) as the Transpose / MatMul / Mul /
  // Transpose nodes it replaced.
  absl::Status EmitMatMulViews(const Node& n) {
    const std::string& b = n.name;
    std::vector<std::string> operands = {n.inputs[0], n.inputs[1]};
    const char* keys[] = {"a_perm", "b_perm"};
    for (int i = 0; i < 2; ++i) {
      if (!n.HasAttr(keys[i])) continue;
      const std::string t = FreshValue(operands[i] + "/transposed");
      SetAttr(*AddNode(b + "/Transpose_" + keys[i], "Transpose", {operands[i]}, {t}), "perm",
              n.GetInts(keys[i]));
      operands[i] = t;
    }
    const bool scaled = n.HasAttr("alpha"), transposed = n.HasAttr("y_perm");
    const std::string last = n.fused_activations.empty()
                                 ? n.outputs[0]
                                 : FreshValue(n.outputs[0] + "/pre_activation");
    const std::string product = scaled || transposed ? FreshValue(n.outputs[0] + "/product") : last;
    AddNode(b, "MatMul", operands, {product}, /*fresh_name=*/false);
    std::string y = product;
    if (scaled) {
      const std::string s = transposed ? FreshValue(n.outputs[0] + "/scaled") : last;
      AddNode(b + "/Mul_alpha", "Mul", {y, AddInit(b + "/alpha", ScalarF(n.GetFloat("alpha", 1.f)))},
              {s});
      y = s;
    }
    if (transposed) {
      SetAttr(*AddNode(b + "/Transpose_y", "Transpose", {y}, {last}), "perm", n.GetInts("y_perm"));
    }
    EmitActivations(n, last, n.outputs[0]);
    return absl::OkStatus();
  }

  // LayerNormalization over the last axis below opset 17, as the primitive
  // ops it is made of.
  absl::Status EmitLayerNorm(const Node& n) {
    if (n.GetInt("axis", -1) != -1 || !n.HasInput(1)) {
      return absl::UnimplementedError(absl::StrCat(
          n.Describe(), ": only axis -1 with a scale can be written below opset 17"));
    }
    const std::string& b = n.name;
    const std::string& x = n.inputs[0];
    auto v = [&](const char* s) { return FreshValue(b + "/" + s); };
    const std::string u = v("mean"), d = v("centered"), sq = v("squared"), var = v("var"),
                      ve = v("var_eps"), sd = v("std"), nrm = v("normalized");
    const bool shift = n.HasInput(2);
    const std::string scaled = shift ? v("scaled") : n.outputs[0];
    SetAttr(*AddNode(b + "/ReduceMean", "ReduceMean", {x}, {u}), "axes",
            std::vector<int64_t>{-1});
    AddNode(b + "/Sub", "Sub", {x, u}, {d});
    AddNode(b + "/Mul_sq", "Mul", {d, d}, {sq});
    SetAttr(*AddNode(b + "/ReduceMean_var", "ReduceMean", {sq}, {var}), "axes",
            std::vector<int64_t>{-1});
    AddNode(b + "/Add_eps", "Add",
            {var, AddInit(b + "/epsilon", ScalarF(n.GetFloat("epsilon", 1e-5f)))}, {ve});
    AddNode(b + "/Sqrt", "Sqrt", {ve}, {sd});
    AddNode(b + "/Div", "Div", {d, sd}, {nrm});
    AddNode(b + "/Mul_scale", "Mul", {nrm, n.inputs[1]}, {scaled});
    if (shift) AddNode(b + "/Add_bias", "Add", {scaled, n.inputs[2]}, {n.outputs[0]});
    return absl::OkStatus();
  }

  // Fused activations as explicit nodes from `from` to `to`.
  void EmitActivations(const Node& n, std::string from, const std::string& to) {
    const auto& acts = n.fused_activations;
    for (size_t i = 0; i < acts.size(); ++i) {
      const FusedActivation& a = acts[i];
      const std::string out = i + 1 == acts.size() ? to : FreshValue(absl::StrCat(to, "/act", i));
      const std::string base = absl::StrCat(n.name, "/");
      switch (a.kind) {
        case FusedActivation::Kind::kRelu:
          AddNode(base + "Relu", "Relu", {from}, {out});
          break;
        case FusedActivation::Kind::kLeakyRelu:
          SetAttr(*AddNode(base + "LeakyRelu", "LeakyRelu", {from}, {out}), "alpha", a.alpha);
          break;
        case FusedActivation::Kind::kClip:
          AddNode(base + "Clip", "Clip",
                  {from, AddInit(base + "Clip_min", ScalarF(a.alpha)),
                   AddInit(base + "Clip_max", ScalarF(a.beta))},
                  {out});
          break;
        case FusedActivation::Kind::kGeluErf:
          EmitGelu(base + "Gelu", from, out);
          break;
      }
      from = out;
    }
  }

  absl::Status EmitStandard(const Node& n) {
    // Engine-made nodes (passes/) that have no standard form at this opset.
    if (n.op_type == "Gelu") {
      EmitGelu(n.name, n.inputs[0], n.outputs[0]);
      return absl::OkStatus();
    }
    if (n.op_type == "LayerNormalization" && opset_ < 17) return EmitLayerNorm(n);
    if (n.op_type == "MatMul" && (n.HasAttr("a_perm") || n.HasAttr("b_perm") ||
                                  n.HasAttr("alpha") || n.HasAttr("y_perm"))) {
      return EmitMatMulViews(n);
    }
    if (n.op_type == "MatMul" && n.HasInput(2)) {  // a fused bias
      const std::string mm = FreshValue(n.outputs[0] + "/matmul");
      const std::string sum =
          n.fused_activations.empty() ? n.outputs[0] : FreshValue(n.outputs[0] + "/pre_activation");
      AddNode(n.name, "MatMul", {n.inputs[0], n.inputs[1]}, {mm}, false);
      AddNode(n.name + "/bias_Add", "Add", {mm, n.inputs[2]}, {sum});
      EmitActivations(n, sum, n.outputs[0]);
      return absl::OkStatus();
    }
    const onnx::OpSchema* schema =
        onnx::OpSchemaRegistry::Schema(n.op_type, static_cast<int>(opset_), "");
    if (schema == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat(n.Describe(), ": ONNX defines no op '", n.op_type, "' at opset ", opset_));
    }
    ASSIGN_OR_RETURN(UpgradedNode up,
                     UpgradeLegacyNode(n, g_.opset, RankOf(n.inputs.empty() ? "" : n.inputs[0])));
    for (auto& c : up.new_constants) {
      up.inputs[c.input] = AddInit(n.name + "/" + c.name, std::move(c.value));
    }
    std::vector<std::string> outputs = n.outputs;
    if (!n.fused_activations.empty()) outputs[0] = FreshValue(n.outputs[0] + "/pre_activation");
    onnx::NodeProto* p = AddNode(n.name, n.op_type, up.inputs, outputs, /*fresh_name=*/false);
    // Attributes the exported opset does not define (legacy ones already
    // converted above) have no meaning there: they are dropped.
    for (const auto& [key, value] : up.attributes) {
      if (schema->attributes().count(key)) SetAttr(*p, key, value);
    }
    EmitActivations(n, outputs[0], n.outputs[0]);
    return absl::OkStatus();
  }

  absl::Status EmitQuantized(const Node& n) {
    ASSIGN_OR_RETURN(LayerWeights w, ReadLayerWeights(g_, n));
    const std::string& x = n.inputs[0];
    const DataType x_type = DtypeOf(x);
    if (x_type != DataType::kUint8 && x_type != DataType::kInt8) {
      return absl::InvalidArgumentError(
          absl::StrCat(n.Describe(), ": input '", x, "' is not known to hold uint8/int8 codes"));
    }
    const std::string base = n.name + "/";
    const std::string xf = FreshValue(n.name + "/x_dequantized");
    AddNode(base + "x_DequantizeLinear", "DequantizeLinear",
            {x, AddInit(base + "x_scale", ScalarF(n.GetFloat("x_scale", 1.f))),
             AddInit(base + "x_zero_point", XZeroPoint(x_type, n.GetInt("x_zero_point", 0)))},
            {xf});

    const bool conv = n.op_type == "QConv";
    const bool matmul = !conv && RankOf(x) != std::optional<int64_t>(2);
    const int64_t channels = static_cast<int64_t>(w.scales.size());
    const bool per_channel = channels > 1;  // one channel: a per-tensor scale
    Tensor scale =
        per_channel ? Tensor::FromVector<float>({channels}, w.scales) : ScalarF(w.scales[0]);
    Tensor zero = per_channel ? Tensor(DataType::kInt8, {channels}) : Tensor(DataType::kInt8, {});
    const std::string wf = FreshValue(n.name + "/w_dequantized");
    onnx::NodeProto* wdq =
        AddNode(base + "w_DequantizeLinear", "DequantizeLinear",
                {AddInit(base + "w_codes", matmul ? Transpose2D(w.codes) : w.codes),
                 AddInit(base + "w_scale", std::move(scale)),
                 AddInit(base + "w_zero_point", std::move(zero))},
                {wf});
    if (per_channel) SetAttr(*wdq, "axis", int64_t{matmul ? 1 : 0});

    const std::string& y = n.outputs[0];
    const auto out_type = static_cast<DataType>(n.GetInt("out_dtype", 1));
    const bool requantize = out_type != DataType::kFloat32;
    const std::string yf = requantize ? FreshValue(y + "/float") : y;
    const std::string main_out =
        n.fused_activations.empty() ? yf : FreshValue(y + "/pre_activation");
    const std::string bias = n.HasInput(4) ? n.inputs[4] : "";
    if (conv) {
      onnx::NodeProto* p = AddNode(n.name, "Conv", {xf, wf, bias}, {main_out}, false);
      for (const char* key :
           {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}) {
        if (auto it = n.attributes.find(key); it != n.attributes.end()) {
          SetAttr(*p, key, it->second);
        }
      }
    } else if (!matmul) {
      SetAttr(*AddNode(n.name, "Gemm", {xf, wf, bias}, {main_out}, false), "transB", int64_t{1});
    } else if (bias.empty()) {
      AddNode(n.name, "MatMul", {xf, wf}, {main_out}, false);
    } else {
      const std::string mm = FreshValue(y + "/matmul");
      AddNode(n.name, "MatMul", {xf, wf}, {mm}, false);
      AddNode(base + "bias_Add", "Add", {mm, bias}, {main_out});
    }
    EmitActivations(n, main_out, yf);
    if (requantize) {
      AddNode(base + "y_QuantizeLinear", "QuantizeLinear",
              {yf, AddInit(base + "y_scale", ScalarF(n.GetFloat("out_scale", 1.f))),
               AddInit(base + "y_zero_point", Tensor(out_type, {}))},
              {y});
    }
    return absl::OkStatus();
  }

  // Element type and rank of the node's first output, when they follow.
  void Track(const Node& n) {
    if (n.outputs.empty()) return;
    const std::string in0 = n.inputs.empty() ? "" : n.inputs[0];
    dtype_[n.outputs[0]] =
        OutputDtype(n, DtypeOf(in0), n.HasInput(2) ? DtypeOf(n.inputs[2]) : DataType::kUndefined);
    std::vector<std::optional<int64_t>> ranks;
    for (const auto& i : n.inputs) ranks.push_back(i.empty() ? std::nullopt : RankOf(i));
    const Tensor* shape =
        n.op_type == "Reshape" && n.HasInput(1) ? g_.FindInitializer(n.inputs[1]) : nullptr;
    if (auto r = OutputRank(n, ranks, shape)) rank_[n.outputs[0]] = *r;
  }

  void WriteInitializers() {
    std::set<std::string> used;
    for (const auto& p : out_.node()) used.insert(p.input().begin(), p.input().end());
    for (const auto& v : g_.outputs) used.insert(v.name);
    for (const auto& [name, t] : g_.initializers) {
      if (used.count(name)) *out_.add_initializer() = TensorToProto(t, name);
    }
    for (const auto& [name, t] : new_inits_) *out_.add_initializer() = TensorToProto(t, name);
  }

  static void WriteValueInfo(const ValueInfo& v, DataType dtype, onnx::ValueInfoProto* p) {
    p->set_name(v.name);
    auto* tt = p->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(TensorToProto(Tensor(dtype, {}), "").data_type());
    if (v.shape.empty()) return;  // unknown (the importer's "no shape")
    auto* shape = tt->mutable_shape();
    for (size_t d = 0; d < v.shape.size(); ++d) {
      auto* dim = shape->add_dim();
      if (v.shape[d] >= 0)
        dim->set_dim_value(v.shape[d]);
      else
        dim->set_dim_param(d == 0 ? "batch" : absl::StrCat(v.name, "_dim", d));
    }
  }

  const Graph& g_;
  const int64_t opset_;
  onnx::GraphProto& out_;
  std::set<std::string> names_, node_names_;
  std::map<std::string, DataType> dtype_;
  std::map<std::string, int64_t> rank_;
  std::map<std::string, Tensor> new_inits_;
};

absl::Status Validate(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("the exported model fails the ONNX checker: ", e.what()));
  }
  onnx::ModelProto copy = model;
  try {
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true,
                                                                   /*strict_mode=*/1));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("the exported model fails ONNX type and shape inference: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ExportQdqOnnx(const Graph& graph, const std::string& model_name) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("quantserve");
  const int64_t opset = std::max(kMinExportOpset, graph.opset);
  auto* imp = model.add_opset_import();
  imp->set_domain("");
  imp->set_version(opset);
  onnx::GraphProto& g = *model.mutable_graph();
  g.set_name(model_name);
  Exporter exporter(graph, opset, g);
  absl::Status s = exporter.Run();
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("exporting '", model_name, "': ", s.message()));
  }
  s = Validate(model);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("exporting '", model_name, "': ", s.message()));
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "exporting '", model_name, "': the model does not serialize (over protobuf's 2 GiB?)"));
  }
  return bytes;
}

}  // namespace qs::quant
