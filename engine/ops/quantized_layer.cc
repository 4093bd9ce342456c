#include "engine/ops/quantized_layer.h"

#include "absl/strings/str_cat.h"
#include "engine/cpu_features.h"
#include "engine/ops/dnnl_util.h"
#include "engine/status_macros.h"

namespace qs {

absl::Status CheckQuantizedIo(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kUint8 && c.in_dtypes[0] != DataType::kInt8) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": input must be uint8 or int8 codes, got ",
        DataTypeName(c.in_dtypes[0])));
  }
  const auto out = static_cast<DataType>(c.node.GetInt("out_dtype", 1));
  if (out != DataType::kFloat32 && out != DataType::kUint8 && out != DataType::kInt8) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": out_dtype must be float32, uint8 or int8"));
  }
  for (int i = 1; i <= 3; ++i) {
    if (c.constant(i) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": weight input ", i, " must be a constant"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<QuantizedLayerParams> ReadQuantizedLayer(const OpContext& c) {
  RETURN_IF_ERROR(CheckQuantizedIo(c));
  QuantizedLayerParams p;
  p.x_dtype = c.in_dtypes[0];
  p.x_scale = c.node.GetFloat("x_scale", 1.f);
  const int64_t x_zero_point = c.node.GetInt("x_zero_point", 0);
  if (x_zero_point != 0 &&
      (!SeesNoPadding(c.node) || c.in_dtypes[0] != DataType::kUint8 || x_zero_point < 0 ||
       x_zero_point > 255)) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": x_zero_point ", x_zero_point,
        " needs uint8 input codes, a value in 0..255 and a layer without padding"));
  }
  p.x_zero_point = static_cast<int32_t>(x_zero_point);
  p.out_dtype = static_cast<DataType>(c.node.GetInt("out_dtype", 1));
  p.out_scale = c.node.GetFloat("out_scale", 1.f);
  p.w_shape = c.node.GetInts("w_shape");
  if (p.w_shape.empty() || !(p.x_scale > 0.f) || !(p.out_scale > 0.f)) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": needs w_shape and positive x_scale/out_scale"));
  }
  quant::QuantizedWeights& w = p.weights;
  w.bits = static_cast<int>(c.node.GetInt("w_bits", 8));
  w.shape = p.w_shape;
  const Tensor& scales = *c.constant(3);
  w.channels = scales.num_elements();
  w.per_channel = w.channels == p.w_shape[0];
  if (w.bits < 1 || w.bits > 8 || (w.channels != 1 && !w.per_channel)) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": inconsistent w_bits or weight scales"));
  }
  w.scales.assign(scales.data<float>(), scales.data<float>() + w.channels);
  w.zero_points.assign(w.channels, 0);
  const Tensor& packed = *c.constant(1);
  const Tensor& levels = *c.constant(2);
  w.packed.assign(packed.data<uint8_t>(), packed.data<uint8_t>() + packed.num_elements());
  w.level_codes.assign(levels.data<int8_t>(), levels.data<int8_t>() + levels.num_elements());
  if (static_cast<int64_t>(w.level_codes.size()) != w.channels << w.bits) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": level table does not match w_bits"));
  }
  w.codes = w.UnpackCodes();
  if (static_cast<int64_t>(w.codes.size()) != NumElements(p.w_shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": packed weights do not match w_shape"));
  }
  // Correct by construction: the quantizer keeps codes within the safe
  // range; refuse weights that would silently saturate on this CPU.
  const int limit = MaxSafeWeightCode();
  for (int8_t code : w.level_codes) {
    if (code > limit || code < -limit - 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          c.node.Describe(), ": weight code ", int{code}, " exceeds ±", limit,
          ", the largest exact on this CPU (", CpuIsaName(),
          " without VNNI saturates u8·s8 pairs)"));
    }
  }
  if (c.has_input(4)) {
    const Tensor* b = c.constant(4);
    if (b == nullptr || b->num_elements() != p.w_shape[0]) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": bias must be a constant [", p.w_shape[0], "]"));
    }
    p.bias.assign(b->data<float>(), b->data<float>() + b->num_elements());
  }
  return p;
}

bool SeesNoPadding(const Node& n) {
  if (n.op_type != "Conv" && n.op_type != "QConv") return true;
  const std::string auto_pad = n.GetString("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") return false;
  for (int64_t p : n.GetInts("pads", {})) {
    if (p != 0) return false;
  }
  return true;
}

Int8Epilogue MakeInt8Epilogue(const Node& node, const QuantizedLayerParams& p, int scale_mask) {
  Int8Epilogue e;
  const int64_t oc = p.w_shape[0];
  const float out_unit = p.out_dtype == DataType::kFloat32 ? 1.f : p.out_scale;
  std::vector<float> oscales(oc);
  const int64_t per_channel = oc > 0 ? static_cast<int64_t>(p.weights.codes.size()) / oc : 0;
  for (int64_t c = 0; c < oc; ++c) {
    const float wscale = p.weights.scales[p.weights.per_channel ? c : 0];
    oscales[c] = p.x_scale * wscale / out_unit;
    double acc_bias = p.bias.empty() ? 0.0 : p.bias[c] / (p.x_scale * wscale);
    if (p.x_zero_point != 0) {
      int64_t code_sum = 0;
      for (int64_t k = 0; k < per_channel; ++k) code_sum += p.weights.codes[c * per_channel + k];
      acc_bias -= static_cast<double>(p.x_zero_point) * static_cast<double>(code_sum);
    }
    if (!p.bias.empty() || p.x_zero_point != 0) e.bias_acc.push_back(static_cast<float>(acc_bias));
  }
  e.attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  e.attr.set_output_scales(scale_mask, oscales);
  // Activations run after the output scale, i.e. in output units.
  dnnl::post_ops ops = MakeActivationPostOps(node.fused_activations, out_unit);
  e.attr.set_post_ops(ops);
  return e;
}

}  // namespace qs
