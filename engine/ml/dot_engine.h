// Dot products of input rows with a constant weight matrix — the shared core
// of LinearClassifier/Regressor (weights = coefficients) and the SVMs
// (weights = support vectors or linear coefficients).
//
// fp32: accumulated in double (matches scikit-learn's float64 math within
// float rounding). int8 (quantizer-set `qs_weight_bits`): every input
// feature f is mapped to u8 codes over its calibrated range [lo_f, hi_f],
// x ≈ lo_f + s_f·u; the per-feature scale is folded into the weights, which
// are quantized to s8 per output row (within ±64 without VNNI, see
// cpu_features.h), and the product runs as a oneDNN u8×s8 inner product with
// per-row output scales; Σ_f w_f·lo_f is folded into the bias.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kernel.h"

namespace qs::ml {

class DotEngine {
 public:
  virtual ~DotEngine() = default;
  // out[n, m] = x[n, f] · weightsᵀ (x rows have stride f).
  virtual absl::Status Dot(const float* x, int64_t n, double* out, RunContext& ctx) const = 0;
  virtual KernelInfo Info() const = 0;
  virtual int64_t bytes() const = 0;
};

// weights: [m, f] row-major.
std::unique_ptr<DotEngine> MakeFloatDot(std::vector<float> weights, int64_t m, int64_t f);

// Per-feature input ranges from calibration ([lo_0, hi_0, lo_1, hi_1, ...]),
// stored by the quantizer on the node as `qs_input_ranges`. `rows` is the
// batch size the primitive is built for.
absl::StatusOr<std::unique_ptr<DotEngine>> MakeInt8Dot(const std::vector<float>& weights,
                                                       int64_t m, int64_t f,
                                                       const std::vector<float>& ranges,
                                                       int64_t rows, const dnnl::engine& engine);

// The node's dot engine: int8 when the quantizer marked it (qs_weight_bits
// = 8 with qs_input_ranges), else fp32. Errors name the node.
absl::StatusOr<std::unique_ptr<DotEngine>> MakeDotForNode(const OpContext& c,
                                                          std::vector<float> weights, int64_t m,
                                                          int64_t f, int64_t rows);

}  // namespace qs::ml
