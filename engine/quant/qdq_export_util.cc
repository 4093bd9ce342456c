#include <set>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/onnx_tensor.h"
#include "engine/quant/bit_packing.h"
#include "engine/quant/qdq_export_internal.h"
#include "engine/quant/weight_quantizer.h"
#include "onnx/onnx_pb.h"

namespace qs::quant {

void SetAttr(onnx::NodeProto& node, const std::string& name, const AttributeValue& value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          a->set_type(onnx::AttributeProto::INT);
          a->set_i(v);
        } else if constexpr (std::is_same_v<T, float>) {
          a->set_type(onnx::AttributeProto::FLOAT);
          a->set_f(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          a->set_type(onnx::AttributeProto::STRING);
          a->set_s(v);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          a->set_type(onnx::AttributeProto::INTS);
          for (int64_t x : v) a->add_ints(x);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          a->set_type(onnx::AttributeProto::FLOATS);
          for (float x : v) a->add_floats(x);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          a->set_type(onnx::AttributeProto::STRINGS);
          for (const auto& x : v) a->add_strings(x);
        } else {
          static_assert(std::is_same_v<T, Tensor>);
          a->set_type(onnx::AttributeProto::TENSOR);
          *a->mutable_t() = TensorToProto(v, "");
        }
      },
      value);
}

absl::StatusOr<UpgradedNode> UpgradeLegacyNode(const Node& n, int64_t opset,
                                               std::optional<int64_t> input_rank) {
  UpgradedNode up{n.inputs, n.attributes, {}};
  const std::string& op = n.op_type;
  if (op == "Clip" && opset < 11) {
    up.inputs.resize(3);
    for (auto [key, slot] : {std::pair<const char*, size_t>{"min", 1}, {"max", 2}}) {
      if (!n.HasAttr(key)) continue;
      up.new_constants.push_back({slot, key, Tensor::FromVector<float>({}, {n.GetFloat(key, 0)})});
      up.attributes.erase(key);
    }
  } else if (op == "Reshape" && opset < 5 && n.HasAttr("shape")) {
    const std::vector<int64_t> shape = n.GetInts("shape");
    up.inputs.resize(2);
    up.new_constants.push_back(
        {1, "shape", Tensor::FromVector<int64_t>({static_cast<int64_t>(shape.size())}, shape)});
    up.attributes.erase("shape");
  } else if ((op == "Softmax" || op == "LogSoftmax") && opset < 13) {
    int64_t axis = n.GetInt("axis", 1);
    if (!input_rank) {
      return absl::UnimplementedError(absl::StrCat(
          n.Describe(), ": an opset-", opset, " ", op,
          " flattens its input at `axis`; its input's rank is unknown, so opset 13 cannot "
          "express it"));
    }
    if (axis < 0) axis += *input_rank;
    if (axis != *input_rank - 1) {
      return absl::UnimplementedError(
          absl::StrCat(n.Describe(), ": an opset-", opset, " ", op, " over axis ", axis,
                       " of a rank-", *input_rank,
                       " input normalizes all trailing dims together; opset 13 cannot "
                       "express it as one node"));
    }
    up.attributes["axis"] = axis;
  } else if ((op == "Add" || op == "Sub" || op == "Mul" || op == "Div") && opset < 7 &&
             n.GetInt("broadcast", 0) != 0 && n.HasAttr("axis")) {
    return absl::UnimplementedError(absl::StrCat(
        n.Describe(), ": legacy broadcasting along `axis` (opset < 7) is not exported"));
  }
  return up;
}

absl::StatusOr<LayerWeights> ReadLayerWeights(const Graph& g, const Node& n) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(n.Describe(), ": ", why));
  };
  if (n.inputs.size() < 4) return bad("needs codes, packed weights, a level table and scales");
  const Tensor* packed = g.FindInitializer(n.inputs[1]);
  const Tensor* levels = g.FindInitializer(n.inputs[2]);
  const Tensor* scales = g.FindInitializer(n.inputs[3]);
  if (packed == nullptr || levels == nullptr || scales == nullptr) {
    return bad("weight inputs 1 to 3 must be initializers");
  }
  if (packed->dtype() != DataType::kUint8 || levels->dtype() != DataType::kInt8 ||
      scales->dtype() != DataType::kFloat32) {
    return bad("weight inputs must be uint8 level indices, an int8 level table and f32 scales");
  }
  QuantizedWeights w;
  w.bits = static_cast<int>(n.GetInt("w_bits", 8));
  w.shape = n.GetInts("w_shape");
  w.channels = scales->num_elements();
  const int64_t numel = NumElements(w.shape);
  if (w.bits < 1 || w.bits > 8 || w.shape.empty() || numel <= 0 || w.channels <= 0 ||
      (w.channels != 1 && w.channels != w.shape[0]) ||
      (n.op_type == "QDense" && w.shape.size() != 2)) {
    return bad("w_bits, w_shape and the weight scales are inconsistent");
  }
  w.per_channel = w.channels == w.shape[0];
  if (levels->num_elements() != w.channels << w.bits) {
    return bad("the level table does not match w_bits");
  }
  if (packed->num_elements() < w.channels * PackedBytes(numel / w.channels, w.bits)) {
    return bad("the packed weights are shorter than w_shape needs");
  }
  w.packed.assign(packed->data<uint8_t>(), packed->data<uint8_t>() + packed->num_elements());
  w.level_codes.assign(levels->data<int8_t>(), levels->data<int8_t>() + levels->num_elements());
  if (n.HasInput(4)) {
    const Tensor* b = g.FindInitializer(n.inputs[4]);
    if (b == nullptr || b->dtype() != DataType::kFloat32 || b->rank() != 1 ||
        b->num_elements() != w.shape[0]) {
      return bad(absl::StrCat("the bias must be a float32 initializer [", w.shape[0], "]"));
    }
  }
  LayerWeights out;
  out.codes = Tensor::FromVector<int8_t>(w.shape, w.UnpackCodes());
  out.scales.assign(scales->data<float>(), scales->data<float>() + w.channels);
  return out;
}

Tensor Transpose2D(const Tensor& t) {
  const int64_t rows = t.shape()[0], cols = t.shape()[1];
  Tensor out(DataType::kInt8, {cols, rows});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c)
      out.data<int8_t>()[c * rows + r] = t.data<int8_t>()[r * cols + c];
  }
  return out;
}

DataType OutputDtype(const Node& n, DataType in0, DataType in2) {
  if (!n.domain.empty()) return static_cast<DataType>(n.GetInt("out_dtype", 1));
  const std::string& op = n.op_type;
  if (op == "QuantizeLinear") return in2 == DataType::kUndefined ? DataType::kUint8 : in2;
  // Ops the engine also runs on int8 codes (see int8_flow.cc) keep their type.
  if (op == "MaxPool" || op == "Flatten" || op == "Reshape" || op == "Transpose" ||
      op == "Identity" || op == "Concat" || op == "Dropout") {
    return in0;
  }
  return DataType::kFloat32;
}

std::optional<int64_t> OutputRank(const Node& n, const std::vector<std::optional<int64_t>>& ranks,
                                  const Tensor* reshape_shape) {
  const std::string& op = n.op_type;
  if (op == "Flatten" || op == "Gemm") return 2;
  if (op == "Reshape") {
    if (reshape_shape != nullptr) return reshape_shape->num_elements();
    if (n.HasAttr("shape")) return static_cast<int64_t>(n.GetInts("shape").size());
    return std::nullopt;
  }
  if (op == "MatMul" || op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    int64_t r = 0;
    // MatMul's third input is the engine's fused bias (1-D): not a rank source.
    const size_t operands = op == "MatMul" ? std::min<size_t>(ranks.size(), 2) : ranks.size();
    for (size_t i = 0; i < operands; ++i) {
      const auto& x = ranks[i];
      if (!x || (op == "MatMul" && *x < 2)) return std::nullopt;
      r = std::max(r, *x);
    }
    return r;
  }
  if (op == "Gather" && ranks.size() == 2 && ranks[0] && ranks[1]) {
    return *ranks[0] + *ranks[1] - 1;
  }
  // Ops whose output has their first input's rank; anything else is unknown
  // (Shape, Unsqueeze, Expand, Where, ... change it).
  static const std::set<std::string> kSameRank = {
      "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Softmax", "MaxPool", "AveragePool",
      "GlobalAveragePool", "Conv", "BatchNormalization", "Identity", "Dropout", "Transpose",
      "Concat", "Slice", "Cast", "LayerNormalization", "Gelu", "Sqrt", "Erf", "Pow",
      "QuantizeLinear", "DequantizeLinear", "QConv", "QDense"};
  const bool reduce_keep = op.rfind("Reduce", 0) == 0 && n.GetInt("keepdims", 1) != 0;
  if (ranks.empty() || (!kSameRank.count(op) && !reduce_keep)) return std::nullopt;
  return ranks[0];
}

}  // namespace qs::quant
