#include "tests/engine/onnx_builder.h"

#include <cmath>
#include <limits>
#include <random>

#include "engine/onnx_importer.h"
#include "engine/onnx_tensor.h"

namespace qs::test {

OnnxAttr::OnnxAttr(int64_t v) {
  proto_.set_type(onnx::AttributeProto::INT);
  proto_.set_i(v);
}
OnnxAttr::OnnxAttr(float v) {
  proto_.set_type(onnx::AttributeProto::FLOAT);
  proto_.set_f(v);
}
OnnxAttr::OnnxAttr(std::string v) {
  proto_.set_type(onnx::AttributeProto::STRING);
  proto_.set_s(std::move(v));
}
OnnxAttr::OnnxAttr(std::vector<int64_t> v) {
  proto_.set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) proto_.add_ints(x);
}
OnnxAttr::OnnxAttr(std::vector<float> v) {
  proto_.set_type(onnx::AttributeProto::FLOATS);
  for (float x : v) proto_.add_floats(x);
}
OnnxAttr::OnnxAttr(const Tensor& v) {
  proto_.set_type(onnx::AttributeProto::TENSOR);
  *proto_.mutable_t() = TensorToProto(v, "");
}

OnnxBuilder::OnnxBuilder(int64_t opset, int64_t ir_version) {
  model_.set_ir_version(ir_version);
  model_.set_producer_name("quantserve-tests");
  if (opset > 0) {
    auto* imp = model_.add_opset_import();
    imp->set_domain("");
    imp->set_version(opset);
  }
  model_.mutable_graph()->set_name("test_graph");
}

namespace {
void SetType(onnx::ValueInfoProto& v, const Shape& dims, int elem_type) {
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0) {
      dim->set_dim_param("batch");
    } else {
      dim->set_dim_value(d);
    }
  }
}
}  // namespace

OnnxBuilder& OnnxBuilder::Input(const std::string& name, const Shape& dims, int elem_type) {
  auto* v = graph().add_input();
  v->set_name(name);
  SetType(*v, dims, elem_type);
  return *this;
}

OnnxBuilder& OnnxBuilder::Output(const std::string& name) {
  graph().add_output()->set_name(name);
  return *this;
}

OnnxBuilder& OnnxBuilder::Output(const std::string& name, const Shape& dims, int elem_type) {
  auto* v = graph().add_output();
  v->set_name(name);
  SetType(*v, dims, elem_type);
  return *this;
}

OnnxBuilder& OnnxBuilder::Initializer(const std::string& name, const Tensor& value) {
  *graph().add_initializer() = TensorToProto(value, name);
  return *this;
}

OnnxBuilder& OnnxBuilder::Initializer(const std::string& name, onnx::TensorProto proto) {
  proto.set_name(name);
  *graph().add_initializer() = std::move(proto);
  return *this;
}

OnnxBuilder& OnnxBuilder::Node(const std::string& op_type,
                               const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs,
                               const OnnxAttrs& attrs, const std::string& name) {
  const int index = graph().node_size();
  auto* n = graph().add_node();
  n->set_op_type(op_type);
  n->set_name(name.empty() ? op_type + "_" + std::to_string(index) : name);
  for (const auto& in : inputs) n->add_input(in);
  for (const auto& out : outputs) n->add_output(out);
  for (const auto& [key, value] : attrs) {
    auto* a = n->add_attribute();
    value.ApplyTo(*a);
    a->set_name(key);
  }
  return *this;
}

OnnxBuilder& OnnxBuilder::Constant(const std::string& output, const Tensor& value,
                                   const std::string& name) {
  return Node("Constant", {}, {output}, {{"value", OnnxAttr(value)}}, name);
}

std::string OnnxBuilder::Serialize() const {
  std::string bytes;
  model_.SerializeToString(&bytes);
  return bytes;
}

Tensor RandomTensor(const Shape& shape, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t(DataType::kFloat32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = dist(rng);
  return t;
}

absl::StatusOr<Graph> ImportBuilt(const OnnxBuilder& b) {
  return ImportOnnxBytes(b.Serialize(), "test model");
}

absl::StatusOr<std::unique_ptr<CompiledModel>> CompileBuilt(const OnnxBuilder& b,
                                                             const CompileOptions& options) {
  absl::StatusOr<Graph> graph = ImportBuilt(b);
  if (!graph.ok()) return graph.status();
  return CompiledModel::Compile(*std::move(graph), options);
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  if (a.dtype() != DataType::kFloat32 || b.dtype() != DataType::kFloat32 ||
      a.shape() != b.shape()) {
    return std::numeric_limits<double>::infinity();
  }
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    double d = std::fabs(double{a.data<float>()[i]} - double{b.data<float>()[i]});
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, d);
  }
  return worst;
}

double MaxRelDiff(const Tensor& a, const Tensor& b) {
  if (a.dtype() != DataType::kFloat32 || b.dtype() != DataType::kFloat32 ||
      a.shape() != b.shape()) {
    return std::numeric_limits<double>::infinity();
  }
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    double d = std::fabs(x - y) / std::max(1.0, std::fabs(y));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, d);
  }
  return worst;
}

}  // namespace qs::test
