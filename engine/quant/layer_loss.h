// The math behind OptimizeLayerWeights (weight_optimizer.h); not part of the
// public API:
//  * SoftWeights: the learnable form Ŵ = s_c·q of a quantized layer, with q
//    soft AdaRound codes, re-rounded codes or fixed codes;
//  * LayerLoss: the loss a quantized layer's outputs incur against its fp32
//    outputs over calibration rows, and its gradient with respect to Ŵ.
//
// Both losses only need e = (Ŵ − W)·x per row, the output error: mse is
// ||e||²/OC and the student logits of cross_entropy are the fp32 teacher's
// logits (precomputed once) plus e. So every call is one product with ΔW and,
// for the gradient, one outer-product accumulation — no fp32 forward per step.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/quant/policy.h"
#include "engine/tensor.h"

namespace qs::quant {

// Learnable quantized weights, flat [n] in channels of `group` weights
// (channel of weight i: i / group). The caller fills the public fields.
struct SoftWeights {
  int64_t n = 0, channels = 0, group = 0;
  bool round = false;    // AdaRound variables V drive the codes (linear only)
  bool reround = false;  // linear, fixed rounding: codes = RTN under the current scale
  const float* w = nullptr;       // fp32 weights [n]
  std::vector<int8_t> fixed;      // log2/kmeans/sign: the codes, never changed
  std::vector<float> s0, u;       // per channel: initial scale, learned s/s0
  std::vector<int> lo, hi;        // per channel code range (linear)
  std::vector<float> base, v;     // AdaRound: floor(W/s) and V
  std::vector<float> q;           // current (soft) codes [n]
  std::vector<float> h, dhdv, dqdv;  // AdaRound: h(V), dh/dV, dq/dV (0 where clamped)

  float Scale(int64_t c) const { return s0[c] * u[c]; }
  // Switches to AdaRound at the round-to-nearest point of the current scales:
  // h(V) = frac(W/s), so the soft weights reproduce W exactly.
  void StartRounding();
  // Recomputes q (and h with its derivatives when rounding is learned).
  void Update();
};

// out[i] = scales[i / group]·codes[i].
void DequantizeCodes(std::span<const float> codes, const std::vector<float>& scales,
                     int64_t group, std::vector<float>& out);

class LayerLoss {
 public:
  // `w` is the fp32 layer [oc, k] (copied); `inputs` float32 [S, k] rows (its
  // buffer is shared, not copied); `bias` [oc] or empty. Shapes must already
  // be validated. For cross_entropy this computes the teacher logits, one
  // S×k×oc product.
  LayerLoss(Loss loss, std::span<const float> w, int64_t oc, int64_t k, const Tensor& inputs,
            std::span<const float> bias);

  int64_t rows() const { return rows_; }

  // Mean over `rows` (all rows when empty) of the per-row loss of weights
  // `w_hat` [oc, k]:
  //   mse:           ||Ŵx − Wx||² / oc
  //   cross_entropy: −Σ_o p_o log q_o,  p = softmax(Wx + b), q = softmax(Ŵx + b)
  // When `grad` is non-empty (oc·k floats) it receives d(mean loss)/dŴ.
  double Compute(std::span<const float> w_hat, std::span<const int64_t> rows,
                 std::span<float> grad);

  // The loss of the fp32 weights themselves over all rows: 0 for mse, the
  // teacher's mean entropy for cross_entropy. Loss − Floor() is what rounding costs.
  double Floor() const { return floor_; }

 private:
  // Per-row loss from the output error e (oc floats); writes dloss/de into g.
  double RowLoss(int64_t row, const float* e, float* g);

  Loss loss_;
  int64_t oc_, k_, rows_;
  std::vector<float> w_;
  Tensor inputs_;
  std::vector<float> teacher_;  // cross_entropy: [S, oc] logits Wx + b
  double floor_ = 0.0;
  // Scratch, reused across calls (the optimizer calls Compute hundreds of times).
  std::vector<float> delta_t_;  // (Ŵ − W)ᵀ [k, oc]
  std::vector<float> grad_t_;   // dloss/dŴᵀ [k, oc]
  std::vector<float> e_, g_;    // one row's output error and dloss/de
  std::vector<float> z_;        // one row's student logits
  std::vector<double> p_, q_;   // one row's teacher / student softmax
};

}  // namespace qs::quant
