#include "engine/onnx_importer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/onnx_schema_check.h"
#include "engine/onnx_tensor.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"
#include "onnx/onnx_pb.h"

namespace qs {
namespace {

absl::StatusOr<AttributeValue> ConvertAttribute(const onnx::AttributeProto& a,
                                                const std::string& node_desc) {
  switch (a.type()) {
    case onnx::AttributeProto::INT: return AttributeValue(a.i());
    case onnx::AttributeProto::FLOAT: return AttributeValue(a.f());
    case onnx::AttributeProto::STRING: return AttributeValue(a.s());
    case onnx::AttributeProto::INTS:
      return AttributeValue(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case onnx::AttributeProto::FLOATS:
      return AttributeValue(std::vector<float>(a.floats().begin(), a.floats().end()));
    case onnx::AttributeProto::STRINGS:
      return AttributeValue(
          std::vector<std::string>(a.strings().begin(), a.strings().end()));
    case onnx::AttributeProto::TENSOR: {
      ASSIGN_OR_RETURN(Tensor t, TensorFromProto(a.t(), absl::StrCat(
                                     node_desc, " attribute '", a.name(), "'")));
      return AttributeValue(std::move(t));
    }
    default:
      return absl::UnimplementedError(absl::StrCat(
          node_desc, ": attribute '", a.name(), "' has unsupported type ",
          onnx::AttributeProto::AttributeType_Name(a.type())));
  }
}

ValueInfo ConvertValueInfo(const onnx::ValueInfoProto& v) {
  ValueInfo info;
  info.name = v.name();
  if (v.type().has_tensor_type()) {
    const auto& tt = v.type().tensor_type();
    info.dtype = DataTypeFromOnnx(tt.elem_type());
    for (const auto& d : tt.shape().dim()) {
      // dim_param ("batch", "N") or no value: dynamic.
      info.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
  }
  return info;
}

// A Constant node becomes an initializer.
absl::Status ConvertConstant(const onnx::NodeProto& n, Graph& graph) {
  const std::string desc = absl::StrCat("Constant node '", n.name(), "'");
  if (n.output_size() != 1 || n.attribute_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(desc, ": needs exactly one output and one value attribute"));
  }
  const auto& a = n.attribute(0);
  Tensor t;
  if (a.name() == "value") {
    ASSIGN_OR_RETURN(t, TensorFromProto(a.t(), desc));
  } else if (a.name() == "value_float") {
    t = Tensor::FromVector<float>({}, {a.f()});
  } else if (a.name() == "value_floats") {
    t = Tensor::FromVector<float>({a.floats_size()},
                                  std::vector<float>(a.floats().begin(), a.floats().end()));
  } else if (a.name() == "value_int") {
    t = Tensor::FromVector<int64_t>({}, {a.i()});
  } else if (a.name() == "value_ints") {
    t = Tensor::FromVector<int64_t>(
        {a.ints_size()}, std::vector<int64_t>(a.ints().begin(), a.ints().end()));
  } else {
    return absl::UnimplementedError(
        absl::StrCat(desc, ": attribute '", a.name(), "' is not supported"));
  }
  graph.initializers[n.output(0)] = std::move(t);
  return absl::OkStatus();
}

// The ai.onnx and ai.onnx.ml opsets the model imports (0 = not imported).
// A model must import at least one; a pure ai.onnx.ml model needs no ai.onnx.
absl::Status ReadOpsets(const onnx::ModelProto& model, const std::string& what,
                        Graph& graph) {
  for (const auto& imp : model.opset_import()) {
    if (imp.domain().empty() || imp.domain() == "ai.onnx") graph.opset = imp.version();
    if (imp.domain() == kMlDomain) graph.ml_opset = imp.version();
  }
  if (graph.opset == 0 && graph.ml_opset == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the model imports no ai.onnx opset"));
  }
  if (graph.opset != 0 && (graph.opset < kMinOpset || graph.opset > kMaxOpset)) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": ai.onnx opset ", graph.opset, " is not supported (supported: ", kMinOpset,
        " to ", kMaxOpset, ")"));
  }
  if (graph.ml_opset != 0 && (graph.ml_opset < kMinMlOpset || graph.ml_opset > kMaxMlOpset)) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": ai.onnx.ml opset ", graph.ml_opset, " is not supported (supported: ",
        kMinMlOpset, " to ", kMaxMlOpset, ")"));
  }
  return absl::OkStatus();
}

// The op's definition if the engine implements it in the node's domain at
// the model's opset for that domain; otherwise an error naming the node.
absl::StatusOr<const OpDef*> FindNodeOp(const Node& node, const Graph& graph,
                                        const std::string& what) {
  const OpDef* def = FindOp(node.op_type);
  if (def == nullptr || node.domain != def->domain) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": ", node.Describe(), " uses op '",
        node.domain.empty() ? "" : node.domain + ".", node.op_type,
        "', which is not supported (model opset ", graph.opset,
        "; supported ops: ", SupportedOpsList(), "; ai.onnx opsets ", kMinOpset,
        " to ", kMaxOpset, ", ai.onnx.ml opsets ", kMinMlOpset, " to ", kMaxMlOpset, ")"));
  }
  const int64_t opset = NodeOpset(graph, node.domain);
  const std::string domain = node.domain.empty() ? "ai.onnx" : node.domain;
  if (opset == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", node.Describe(), " is in domain ", domain,
        ", which the model does not import"));
  }
  if (opset < def->min_opset) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": ", node.Describe(), ": op ", node.op_type, " is supported for ", domain,
        " opsets ", def->min_opset, " to ", node.domain.empty() ? kMaxOpset : kMaxMlOpset,
        "; the model uses opset ", opset));
  }
  return def;
}

absl::StatusOr<Graph> ConvertModel(const onnx::ModelProto& model, const std::string& what) {
  if (model.ir_version() <= 0 || !model.has_graph()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is not an ONNX model (no ir_version or no graph)"));
  }
  Graph graph;
  RETURN_IF_ERROR(ReadOpsets(model, what, graph));
  const onnx::GraphProto& g = model.graph();
  graph.name = g.name();
  for (const auto& init : g.initializer()) {
    ASSIGN_OR_RETURN(Tensor t, TensorFromProto(init, absl::StrCat(
                                   what, ": initializer '", init.name(), "'")));
    graph.initializers[init.name()] = std::move(t);
  }
  for (const auto& in : g.input()) {
    if (graph.initializers.count(in.name())) continue;  // IR < 4 lists weights
    ValueInfo info = ConvertValueInfo(in);
    if (info.dtype == DataType::kUndefined) {
      return absl::UnimplementedError(absl::StrCat(
          what, ": graph input '", in.name(), "' is not a tensor of a supported type"));
    }
    graph.inputs.push_back(std::move(info));
  }
  for (const auto& out : g.output()) graph.outputs.push_back(ConvertValueInfo(out));
  if (graph.outputs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the graph has no outputs"));
  }
  int unnamed = 0;
  for (const auto& n : g.node()) {
    if (n.op_type() == "Constant" && n.domain().empty()) {
      RETURN_IF_ERROR(ConvertConstant(n, graph));
      continue;
    }
    Node node;
    node.name = n.name().empty() ? absl::StrCat(n.op_type(), "_", unnamed++) : n.name();
    node.op_type = n.op_type();
    node.domain = n.domain() == "ai.onnx" ? "" : n.domain();
    node.inputs.assign(n.input().begin(), n.input().end());
    node.outputs.assign(n.output().begin(), n.output().end());
    RETURN_IF_ERROR(FindNodeOp(node, graph, what).status());
    RETURN_IF_ERROR(CheckNodeAgainstSchema(n, NodeOpset(graph, node.domain), absl::StrCat(what, ": ", node.Describe())));
    for (const auto& a : n.attribute()) {
      ASSIGN_OR_RETURN(node.attributes[a.name()], ConvertAttribute(a, node.Describe()));
    }
    graph.nodes.push_back(std::move(node));
  }
  for (const auto& out : graph.outputs) {
    bool produced = graph.initializers.count(out.name) > 0;
    for (const auto& in : graph.inputs) produced |= in.name == out.name;
    for (const auto& n : graph.nodes) {
      for (const auto& o : n.outputs) produced |= o == out.name;
    }
    if (!produced) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": graph output '", out.name, "' is never produced"));
    }
  }
  absl::Status sorted = TopologicalSort(graph);
  if (!sorted.ok()) {
    return absl::Status(sorted.code(), absl::StrCat(what, ": ", sorted.message()));
  }
  return graph;
}

}  // namespace

absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes, const std::string& what) {
  onnx::ModelProto model;
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty (0 bytes)"));
  }
  if (!model.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is not a valid ONNX protobuf (truncated or not an ONNX file)"));
  }
  return ConvertModel(model, what);
}

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path,
                                     const ImportOptions& options) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat("model file '", path, "' does not exist"));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model path '", path, "' is not a regular file"));
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && static_cast<int64_t>(size) > options.max_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model file '", path, "' is ", size, " bytes; the limit is ",
        options.max_file_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat("cannot read model file '", path, "'"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ImportOnnxBytes(buffer.str(), absl::StrCat("model file '", path, "'"));
}

}  // namespace qs
