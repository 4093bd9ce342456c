// What the int8 layer kernels (QConv, QDense) share: the node contract and
// the oneDNN attributes for scales and fused activations.
//
// A quantized layer node (domain "quantserve") has inputs
//   0: x    u8 or s8 activation codes, x ≈ x_scale · code
//   1: packed weight level indices (u8), 2: level → int8 code table (s8),
//   3: per-output-channel weight scales (f32), 4: optional f32 bias
// and attributes x_scale, optional x_zero_point (u8 codes, layers without
// padding only, see SeesNoPadding: x ≈ x_scale · (code − x_zero_point)), w_bits, w_method, w_shape (the float weights' shape), out_dtype
// (a qs::DataType value: float32, uint8 or int8) and out_scale (for int8
// outputs: y ≈ out_scale · code).
#pragma once

#include "absl/status/statusor.h"
#include "engine/kernel.h"
#include "engine/quant/weight_quantizer.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace qs {

inline constexpr char kQuantDomain[] = "quantserve";

struct QuantizedLayerParams {
  float x_scale = 1.f;
  int32_t x_zero_point = 0;
  DataType x_dtype = DataType::kUint8;
  DataType out_dtype = DataType::kFloat32;
  float out_scale = 1.f;
  Shape w_shape;
  quant::QuantizedWeights weights;  // codes unpacked from the packed storage
  std::vector<float> bias;          // empty if none
};

// Reads and validates the node's attributes and constant inputs, unpacks the
// weight codes and checks them against the CPU's saturation-safe range.
absl::StatusOr<QuantizedLayerParams> ReadQuantizedLayer(const OpContext& c);

// Output scales (acc → output units, per output channel), bias in
// accumulator units (oneDNN 2.x computes dst = oscale · (acc + bias)) with
// the input zero point folded in (acc over codes exceeds the true one by
// x_zero_point · Σ_k w_code[c, k]), and fused activations rescaled to the
// output's units.
struct Int8Epilogue {
  dnnl::primitive_attr attr;
  std::vector<float> bias_acc;  // empty if no bias
};
Int8Epilogue MakeInt8Epilogue(const Node& node, const QuantizedLayerParams& p, int scale_mask);

// Whether every output of a layer sees only real inputs: dense layers, and
// convolutions (Conv or QConv) without padding, such as MobileNetV2's
// pointwise expansions. Only there is an input zero point folded into the
// bias exact: a padded convolution's border outputs also see code 0.
bool SeesNoPadding(const Node& n);

// Validates x's dtype and the output dtype attribute.
absl::Status CheckQuantizedIo(const OpContext& c);

}  // namespace qs
