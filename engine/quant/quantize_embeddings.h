// Row-wise quantization of embedding tables: every Gather (axis 0) whose
// data is a constant float32 matrix becomes a QEmbedding reading that table
// quantized to 8 or 4 bits per value with a per-row fp16 scale and offset
// (engine/ops/rowwise_table.h). A table read by several Gathers is stored
// once. Each table gets a LayerReport (op "Gather"), and weight_bytes is
// adjusted from the float table's size to the packed one's.
#pragma once

#include "absl/status/status.h"
#include "engine/quant/policy.h"
#include "engine/quant/quantize_graph.h"

namespace qs::quant {

absl::Status QuantizeEmbeddings(QuantizedGraph& q, const EmbeddingPolicy& policy);

}  // namespace qs::quant
