// ONNX QuantizeLinear / DequantizeLinear (per-tensor and, for
// DequantizeLinear, per-axis): the explicit edges between fp32 ops and
// int8 codes. Round half to even, saturate, as the spec says.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

struct QParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  DataType code_type = DataType::kUint8;
  int64_t axis = -1;  // -1: per tensor
};

absl::StatusOr<QParams> ReadQParams(const OpContext& c, const Shape& data_shape) {
  const Tensor* scale = c.constant(1);
  const Tensor* zp = c.has_input(2) ? c.constant(2) : nullptr;
  if (scale == nullptr || (c.has_input(2) && zp == nullptr)) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": scale and zero point must be constants"));
  }
  QParams q;
  q.code_type = zp ? zp->dtype() : DataType::kUint8;
  if (q.code_type != DataType::kUint8 && q.code_type != DataType::kInt8) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": only uint8/int8 codes are supported"));
  }
  const int64_t n = scale->num_elements();
  if (n > 1 || scale->rank() == 1) {
    const int64_t rank = static_cast<int64_t>(data_shape.size());
    int64_t axis = c.node.GetInt("axis", 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank || data_shape[axis] != n) {
      if (n != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            c.node.Describe(), ": ", n, " scales do not match axis ", axis, " of ",
            ShapeToString(data_shape)));
      }
    } else if (n > 1) {
      q.axis = axis;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const float s = static_cast<float>(scale->ScalarAsDouble(i));
    if (!(s > 0.f) || !std::isfinite(s)) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": scale must be positive and finite"));
    }
    q.scale.push_back(s);
    q.zero_point.push_back(zp ? static_cast<int32_t>(zp->ScalarAsInt64(zp->num_elements() == n ? i : 0)) : 0);
  }
  return q;
}

// Index of the scale for element i: per tensor, or along `axis`.
struct AxisIndexer {
  int64_t inner = 1, dim = 1;
  int64_t operator()(int64_t i) const { return (i / inner) % dim; }
};

AxisIndexer MakeIndexer(const Shape& s, int64_t axis) {
  AxisIndexer ix;
  if (axis < 0) return ix;
  ix.dim = s[axis];
  for (size_t d = axis + 1; d < s.size(); ++d) ix.inner *= s[d];
  return ix;
}

class QuantizeKernel : public Kernel {
 public:
  explicit QuantizeKernel(QParams q) : q_(std::move(q)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(q_.code_type, in[0].shape());
    const float* x = in[0].data<float>();
    const AxisIndexer ix = MakeIndexer(in[0].shape(), q_.axis);
    const float lo = q_.code_type == DataType::kUint8 ? 0.f : -128.f;
    const float hi = q_.code_type == DataType::kUint8 ? 255.f : 127.f;
    const int64_t n = in[0].num_elements();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = q_.axis < 0 ? 0 : ix(i);
      // NaN quantizes to the zero point (it compares false everywhere).
      float v = std::nearbyint(x[i] / q_.scale[c]) + static_cast<float>(q_.zero_point[c]);
      v = std::isnan(v) ? static_cast<float>(q_.zero_point[c]) : std::min(hi, std::max(lo, v));
      if (q_.code_type == DataType::kUint8) out[0].data<uint8_t>()[i] = static_cast<uint8_t>(v);
      else out[0].data<int8_t>()[i] = static_cast<int8_t>(v);
    }
    return absl::OkStatus();
  }

 private:
  QParams q_;
};

class DequantizeKernel : public Kernel {
 public:
  explicit DequantizeKernel(QParams q) : q_(std::move(q)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(DataType::kFloat32, in[0].shape());
    const AxisIndexer ix = MakeIndexer(in[0].shape(), q_.axis);
    float* y = out[0].data<float>();
    const int64_t n = in[0].num_elements();
    const bool u8 = in[0].dtype() == DataType::kUint8;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = q_.axis < 0 ? 0 : ix(i);
      const int32_t code = u8 ? in[0].data<uint8_t>()[i] : in[0].data<int8_t>()[i];
      y[i] = static_cast<float>(code - q_.zero_point[c]) * q_.scale[c];
    }
    return absl::OkStatus();
  }

 private:
  QParams q_;
};

absl::StatusOr<std::vector<TypedShape>> InferQuantize(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kFloat32) {
    return absl::UnimplementedError(absl::StrCat(c.node.Describe(), ": input must be float32"));
  }
  ASSIGN_OR_RETURN(QParams q, ReadQParams(c, c.in_shapes[0]));
  return std::vector<TypedShape>{{q.code_type, c.in_shapes[0]}};
}

absl::StatusOr<std::unique_ptr<Kernel>> BuildQuantize(const OpContext& c) {
  ASSIGN_OR_RETURN(QParams q, ReadQParams(c, c.in_shapes[0]));
  return std::unique_ptr<Kernel>(new QuantizeKernel(std::move(q)));
}

absl::StatusOr<std::vector<TypedShape>> InferDequantize(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kUint8 && c.in_dtypes[0] != DataType::kInt8) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": input must be uint8 or int8"));
  }
  ASSIGN_OR_RETURN(QParams q, ReadQParams(c, c.in_shapes[0]));
  if (c.has_input(2) && q.code_type != c.in_dtypes[0]) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": zero point type differs from the input's"));
  }
  return std::vector<TypedShape>{{DataType::kFloat32, c.in_shapes[0]}};
}

absl::StatusOr<std::unique_ptr<Kernel>> BuildDequantize(const OpContext& c) {
  ASSIGN_OR_RETURN(QParams q, ReadQParams(c, c.in_shapes[0]));
  return std::unique_ptr<Kernel>(new DequantizeKernel(std::move(q)));
}

}  // namespace

extern const OpDef kQuantizeLinearOp = {"QuantizeLinear", 10, {1, 2}, InferQuantize, BuildQuantize};
extern const OpDef kDequantizeLinearOp = {"DequantizeLinear", 10, {1, 2}, InferDequantize,
                                          BuildDequantize};

}  // namespace qs
