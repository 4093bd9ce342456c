// Lets int8 codes flow between consecutive quantized layers: a
// QuantizeLinear whose input comes (through MaxPool / Flatten / Reshape,
// each with a single consumer) from a quantized layer producing fp32 is
// removed, and that layer requantizes its output to the codes directly
// (output scale and clipping fused into the oneDNN primitive). The value the
// QuantizeLinear read may have other, float readers (ResNet's stem): when
// the codes are u8 of a layer with a fused Relu, those readers then read a
// DequantizeLinear of the codes — the value rounded to the activation scale
// and saturated at its calibrated maximum, as the quantized layer sees it.
#pragma once

#include "absl/status/status.h"
#include "engine/graph.h"

namespace qs::quant {

absl::Status LetInt8Flow(Graph& graph);

}  // namespace qs::quant
