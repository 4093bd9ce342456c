// The engine's small intermediate representation of a model: a graph of
// nodes over named values, with constant initializers. Imported from ONNX by
// onnx_importer.h, rewritten by passes/, compiled by compiled_model.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs {

using AttributeValue =
    std::variant<int64_t, float, std::string, std::vector<int64_t>,
                 std::vector<float>, std::vector<std::string>, Tensor>;

// An activation fused into the producing Conv/Gemm/MatMul; executed as a
// oneDNN eltwise post-op. kGeluErf is the exact GELU x·Φ(x) (passes/fuse_gelu.cc).
struct FusedActivation {
  enum class Kind { kRelu, kLeakyRelu, kClip, kGeluErf };
  Kind kind = Kind::kRelu;
  float alpha = 0.f;  // LeakyRelu slope, Clip min
  float beta = 0.f;   // Clip max
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default ai.onnx domain
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, AttributeValue> attributes;
  std::vector<FusedActivation> fused_activations;

  bool HasAttr(const std::string& key) const { return attributes.count(key) > 0; }
  int64_t GetInt(const std::string& key, int64_t fallback) const;
  float GetFloat(const std::string& key, float fallback) const;
  std::string GetString(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> GetInts(const std::string& key,
                               std::vector<int64_t> fallback = {}) const;
  std::vector<float> GetFloats(const std::string& key) const;
  // "Conv 'conv1'" — how errors name a node.
  std::string Describe() const;
  // Input i if present and non-empty.
  bool HasInput(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
};

// A graph input or output. A negative dim is dynamic (e.g. the batch).
struct ValueInfo {
  std::string name;
  DataType dtype = DataType::kFloat32;
  Shape shape;
};

struct Graph {
  std::string name;
  int64_t opset = 0;  // ai.onnx opset the model was exported with
  int64_t ml_opset = 0;  // ai.onnx.ml opset; 0 when the model imports none
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;  // topologically sorted
  std::map<std::string, Tensor> initializers;

  bool IsConstant(const std::string& value) const {
    return initializers.count(value) > 0;
  }
  const Tensor* FindInitializer(const std::string& value) const;
  // Bytes of all initializers (the model's weight footprint).
  int64_t InitializerBytes() const;
};

// Orders nodes so every value is produced before it is consumed. Fails with
// a message naming a node on a cycle, or a value nobody produces.
absl::Status TopologicalSort(Graph& graph);

}  // namespace qs
