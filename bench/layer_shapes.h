// The compute layers of a model as the engine runs them (after its graph
// passes: BatchNormalization folded, activations fused): every 2-D Conv and
// every Gemm/MatMul with a constant 2-D weight, with the shapes they see at
// a given batch size. Identical shapes are merged with a count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qs::bench {

struct LayerShape {
  std::string name;  // first node with this shape
  std::string op;    // "conv" or "ip" (inner product)
  int count = 1;     // nodes with this exact shape
  // conv: src [n, ic, ih, iw], weights [oc, ic/groups, kh, kw]
  int64_t n = 0, ic = 0, ih = 0, iw = 0, oc = 0, groups = 1, kh = 1, kw = 1;
  int64_t oh = 0, ow = 0, stride_h = 1, stride_w = 1, dil_h = 0, dil_w = 0;  // oneDNN dilation
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  // ip: src [m, k] x weights [k, n] -> [m, n] (reuses n = m rows, ic = k, oc = n)
  double macs() const;
  std::string Describe() const;  // e.g. "conv 64x56x56 -> 64 k3x3 s1 g1"
};

// Imports `model_path`, runs it once in fp32 on random inputs of batch
// `batch` to learn every value's shape, and lists its layers.
absl::StatusOr<std::vector<LayerShape>> ModelLayerShapes(const std::string& model_path,
                                                         int64_t batch);

}  // namespace qs::bench
