// A tiny fluent helper to build ONNX models in memory for tests:
//
//   OnnxBuilder b(/*opset=*/13);
//   b.Input("x", {-1, 3, 8, 8})               // -1 -> dim_param "batch"
//    .Initializer("w", RandomTensor({4, 3, 3, 3}, 1))
//    .Node("Conv", {"x", "w"}, {"y"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}})
//    .Output("y");
//   std::string bytes = b.Serialize();
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/compiled_model.h"
#include "engine/graph.h"
#include "engine/tensor.h"
#include "onnx/onnx_pb.h"

namespace qs::test {

// One attribute value; the constructors make `{"alpha", 0.5}`,
// `{"group", 3}` and `{"pads", std::vector<int64_t>{...}}` all work.
class OnnxAttr {
 public:
  OnnxAttr(int v) : OnnxAttr(static_cast<int64_t>(v)) {}
  OnnxAttr(int64_t v);
  OnnxAttr(float v);
  OnnxAttr(double v) : OnnxAttr(static_cast<float>(v)) {}
  OnnxAttr(const char* v) : OnnxAttr(std::string(v)) {}
  OnnxAttr(std::string v);
  OnnxAttr(std::vector<int64_t> v);
  OnnxAttr(std::vector<float> v);
  OnnxAttr(const Tensor& v);

  // Fills `a` (its name is set by the caller).
  void ApplyTo(onnx::AttributeProto& a) const { a.MergeFrom(proto_); }

 private:
  onnx::AttributeProto proto_;
};

using OnnxAttrs = std::vector<std::pair<std::string, OnnxAttr>>;

class OnnxBuilder {
 public:
  // opset <= 0 imports no ai.onnx opset at all.
  explicit OnnxBuilder(int64_t opset = 13, int64_t ir_version = 8);

  // A graph input; a negative dim becomes dim_param "batch".
  OnnxBuilder& Input(const std::string& name, const Shape& dims,
                     int elem_type = onnx::TensorProto::FLOAT);
  // A graph output; without dims, no type information is written.
  OnnxBuilder& Output(const std::string& name);
  OnnxBuilder& Output(const std::string& name, const Shape& dims,
                      int elem_type = onnx::TensorProto::FLOAT);
  OnnxBuilder& Initializer(const std::string& name, const Tensor& value);
  // A raw TensorProto initializer (for malformed ones); its name is set.
  OnnxBuilder& Initializer(const std::string& name, onnx::TensorProto proto);
  // A node; `name` defaults to "<op_type>_<index>".
  OnnxBuilder& Node(const std::string& op_type, const std::vector<std::string>& inputs,
                    const std::vector<std::string>& outputs, const OnnxAttrs& attrs = {},
                    const std::string& name = "");
  // A Constant node with a `value` tensor attribute.
  OnnxBuilder& Constant(const std::string& output, const Tensor& value,
                        const std::string& name = "");

  onnx::ModelProto& model() { return model_; }
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }
  std::string Serialize() const;

 private:
  onnx::ModelProto model_;
};

// A float32 tensor of uniform values in [lo, hi), from std::mt19937(seed).
Tensor RandomTensor(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f);

// Imports the builder's model via ImportOnnxBytes (as "test model").
absl::StatusOr<Graph> ImportBuilt(const OnnxBuilder& b);
// Imports and compiles the builder's model.
absl::StatusOr<std::unique_ptr<CompiledModel>> CompileBuilt(
    const OnnxBuilder& b, const CompileOptions& options = {});

// Largest |a - b| over all elements; +inf if shapes or dtypes differ.
double MaxAbsDiff(const Tensor& a, const Tensor& b);
// Largest |a - b| / max(1, |b|).
double MaxRelDiff(const Tensor& a, const Tensor& b);

}  // namespace qs::test
