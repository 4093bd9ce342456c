// Export of a quantized graph as a standard ONNX model in the QDQ format
// that other runtimes (ONNX Runtime, TensorRT, OpenVINO) load and fuse:
// every quantserve QConv / QDense becomes
//
//   x codes → DequantizeLinear(x_scale, x_zero_point) → Conv | Gemm | MatMul(+Add)
//     (weights: DequantizeLinear(int8 codes, per-channel scales, 0))
//   → explicit Relu / LeakyRelu / Clip for the fused activations
//   → QuantizeLinear(out_scale, 0) when the layer outputs int8 codes.
//
// Standard nodes are written as they are (legacy opset forms upgraded to
// the exported opset, max(13, graph.opset), which per-axis
// DequantizeLinear needs). The result is checked with onnx::checker and
// ONNX's strict type/shape inference before it is returned.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace qs::quant {

// Returns a serialized ModelProto (ir_version 8, producer "quantserve",
// graph named `model_name`). Errors name the node or check that failed.
absl::StatusOr<std::string> ExportQdqOnnx(const Graph& graph, const std::string& model_name);

}  // namespace qs::quant
