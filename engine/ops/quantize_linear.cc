// ONNX QuantizeLinear / DequantizeLinear (per-tensor and, for
// DequantizeLinear, per-axis): the explicit edges between fp32 ops and
// int8 codes. Round half to even, saturate, as the spec says.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/quantize_codes.h"
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

// Quantizes x[0, n) into out's elements [offset, offset + n).
void QuantizeRun(const float* x, int64_t n, float scale, float zp, Tensor& out,
                 int64_t offset = 0) {
  if (out.dtype() == DataType::kUint8) QuantizeToU8(x, n, scale, zp, out.data<uint8_t>() + offset);
  else QuantizeToS8(x, n, scale, zp, out.data<int8_t>() + offset);
}

// `layout` with its data type replaced: an elementwise op's output keeps the
// input's element offsets.
dnnl::memory::desc WithDataType(dnnl::memory::desc layout, DataType dtype) {
  layout.data.data_type = static_cast<dnnl_data_type_t>(ToDnnl(dtype));
  return layout;
}

class QuantizeKernel : public Kernel {
 public:
  QuantizeKernel(QParams q, dnnl::memory::desc in_layout, bool out_opaque)
      : q_(std::move(q)), in_layout_(std::move(in_layout)), out_opaque_(out_opaque) {}
  dnnl::memory::desc OutputLayout() const override {
    return out_opaque_ ? WithDataType(in_layout_, q_.code_type) : dnnl::memory::desc();
  }
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    const bool opaque_in = in_layout_ != dnnl::memory::desc();
    if (q_.axis < 0 && out_opaque_) {
      // Every element of the padded buffer alike: the codes keep the layout.
      const int64_t n = static_cast<int64_t>(in_layout_.get_size() / sizeof(float));
      out[0] = Tensor::Uninitialized(q_.code_type, in[0].shape(), static_cast<size_t>(n));
      QuantizeRun(in[0].data<float>(), n, q_.scale[0], static_cast<float>(q_.zero_point[0]),
                  out[0]);
      return absl::OkStatus();
    }
    const Tensor x = opaque_in ? to_plain_.GetTensor(in[0], ctx) : in[0];
    out[0] = Tensor::Uninitialized(q_.code_type, x.shape());
    if (q_.axis < 0) {
      QuantizeRun(x.data<float>(), x.num_elements(), q_.scale[0],
                  static_cast<float>(q_.zero_point[0]), out[0]);
      return absl::OkStatus();
    }
    // Per axis: runs of `inner` contiguous elements share one scale.
    const AxisIndexer ix = MakeIndexer(x.shape(), q_.axis);
    const int64_t runs = ix.inner > 0 ? x.num_elements() / ix.inner : 0;
    for (int64_t r = 0; r < runs; ++r) {
      const int64_t c = r % ix.dim;
      QuantizeRun(x.data<float>() + r * ix.inner, ix.inner, q_.scale[c],
                  static_cast<float>(q_.zero_point[c]), out[0], r * ix.inner);
    }
    return absl::OkStatus();
  }

  LayoutIn to_plain_;  // an opaque input read as plain (per-axis, or plain output)

 private:
  QParams q_;
  dnnl::memory::desc in_layout_;  // zero: plain
  bool out_opaque_;
};

class DequantizeKernel : public Kernel {
 public:
  explicit DequantizeKernel(QParams q) : q_(std::move(q)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor::Uninitialized(DataType::kFloat32, in[0].shape());
    const AxisIndexer ix = MakeIndexer(in[0].shape(), q_.axis);
    float* y = out[0].data<float>();
    const int64_t n = in[0].num_elements();
    const bool u8 = in[0].dtype() == DataType::kUint8;
    if (q_.axis < 0 && (u8 || in[0].dtype() == DataType::kInt8)) {
      if (u8) DequantizeFromU8(in[0].data<uint8_t>(), n, q_.scale[0], q_.zero_point[0], y);
      else DequantizeFromS8(in[0].data<int8_t>(), n, q_.scale[0], q_.zero_point[0], y);
      return absl::OkStatus();
    }
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
  const dnnl::memory::desc in_layout = c.in_layout(0);
  // Per tensor, an opaque input keeps its layout (with code elements).
  const bool out_opaque = in_layout != dnnl::memory::desc() && q.axis < 0 && c.out_layout_free;
  auto k = std::make_unique<QuantizeKernel>(std::move(q), in_layout, out_opaque);
  k->to_plain_ = LayoutIn(GivenLayout(c, 0), PlainDesc(c.in_shapes[0]), *c.engine);
  return std::unique_ptr<Kernel>(std::move(k));
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

extern const OpDef kQuantizeLinearOp = {
    "QuantizeLinear", 10, {1, 2}, InferQuantize, BuildQuantize, "", false, {0}};
extern const OpDef kDequantizeLinearOp = {"DequantizeLinear", 10, {1, 2}, InferDequantize,
                                          BuildDequantize};

}  // namespace qs
