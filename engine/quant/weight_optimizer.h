// Output-aware weight quantization: learn one layer's rounding (AdaRound) and/or
// its per-channel scales by gradient descent so that the quantized layer
// reproduces the fp32 layer's outputs on calibration rows, instead of merely
// minimizing the weight error as round-to-nearest (RTN) does.
//
// Pure math (no oneDNN, no threads), deterministic for a given policy.seed.
//
// What is learned, per method:
//   linear  learn_rounding: AdaRound. Ŵ = s_c·clamp(floor(W/s_c) + h(V), lo_c, hi_c),
//             h(V) = clamp(1.2·sigmoid(V) − 0.1, 0, 1), V starting at the RTN point
//             (h = frac(W/s_c): the soft weights reproduce W exactly), plus the
//             regulariser λ·Σ(1 − |2h − 1|^β), β annealed linearly 20 → 2 over the
//             iterations (no warm-up: at the exact soft start the reconstruction
//             term has nothing to settle), λ = kRoundingLambda; hard rounding
//             h ≥ 0.5 → ceil at the end. [lo_c, hi_c] is the channel's code range in
//             initial.level_codes (±min(2^(bits−1)−1, max_abs_code) when symmetric;
//             the zero-point-shifted range when asymmetric).
//           learn_scales: s_c learned too; dŴ/ds = the (soft) codes. Without learned
//             rounding the codes are re-rounded to nearest (within [lo_c, hi_c])
//             under the current s_c every step (straight-through: the gradient
//             treats them as constants). With both, the first quarter of the
//             iterations learns the scales with re-rounded codes, then AdaRound
//             starts from the RTN point of those scales and learns V and s_c
//             jointly: AdaRound can only choose floor/ceil of W/s for the s it
//             starts from, and its exact soft start gives s no gradient.
//   sign    learn_scales: α_c learned, codes ±1 fixed.
//   log2, kmeans  learn_scales: the channel's grid unit s_c learned, int8 codes fixed
//             (grid_mapping_mse is left as computed for `initial`).
//   learn_rounding is ignored without error for log2/kmeans/sign: their levels
//   are not a uniform grid with a "round up or down" choice.
// If there is nothing to learn (e.g. sign without learn_scales) or RTN already
// matches the fp32 outputs, the initial weights come back with iterations = 0.
//
// Optimization. The objective is the loss normalized so that each weight
// contributes O(1) at round-to-nearest, J = n_weights·(L − L_fp32)/(L_rtn − L_fp32),
// which makes learning_rate and λ mean the same on every layer and data scale:
//   gd    all rows every iteration, plain steps;
//   sgd   mini-batches of batch_size rows, drawn without replacement from a
//         per-epoch permutation (Fisher–Yates over std::mt19937(seed)), plain steps;
//   adam  the same mini-batches, Adam (β1 0.9, β2 0.999, ε 1e-8, bias-corrected).
// Step sizes: V uses learning_rate. Scales are learned as u_c = s_c/s0_c
// (floored at 1e-3 so s_c stays positive). Adam's step on u_c is
// learning_rate / max(1, rms code of the channel), i.e. ≈ learning_rate × s0_c
// on s_c, scaled so that a typical weight moves by ~learning_rate quantization
// steps; plain steps divide u_c's gradient (a sum over the channel's weights)
// by Σ code² of the channel, a fixed diagonal preconditioner that keeps
// learning_rate ~1e-2 stable at any bit width.
//
// Cost per iteration ≈ 4·rows·K·OC flops (zero inputs skipped) plus O(OC·K)
// per-weight work, and one full-set evaluation each of RTN and of the result.
// gd uses every row per step (~60× the cost of a 64-row step on 4000 rows),
// so prefer sgd/adam on large sample sets.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "engine/quant/policy.h"
#include "engine/quant/weight_quantizer.h"
#include "engine/tensor.h"

namespace qs::quant {

// λ of the AdaRound regulariser, per weight, in units of J above (where a
// weight's RTN error costs ~1). AdaRound's usual 0.01 is relative to an
// unnormalized loss and far too weak here: with 300 iterations most h would
// still be undecided at the end. 1000 makes the regulariser win as soon as
// |2h − 1|^(β−1) is non-negligible, so as β falls the weights are committed in
// order of certainty (frac near 0/1 first) while the undecided ones keep
// compensating the committed ones' error through the reconstruction term.
// Measured on random correlated layers, 2–8 bit: the final loss improves
// monotonically from λ = 0.1 (RTN-level, often reverted) to 1000 and flattens
// beyond (10^4 is within ~3%).
inline constexpr double kRoundingLambda = 1000.0;

// One layer as a matrix product: y = W x + b, W [OC, K] (a Conv's weights
// flattened per output channel with K = IC·kh·kw; x then are im2col patches; a
// dense layer's [N, K]). Only group == 1 convolutions fit this form: grouped
// convolutions must be skipped by the caller (this cannot detect them).
struct LayerSamples {
  Tensor inputs;            // float32 [S, K]: calibration inputs of the layer (rows)
  std::vector<float> bias;  // [OC] or empty
};

struct OptimizeResult {
  // Same method/bits/shape/per_channel as `initial`; codes within
  // ±spec.max_abs_code; packed/level_codes consistent (UnpackCodes() == codes).
  QuantizedWeights weights;
  // Loss over ALL sample rows of round-to-nearest (`initial`) and of `weights`.
  // final_loss <= initial_loss always: when the optimized weights were worse
  // they are discarded (reverted = true) and `weights` is `initial`.
  double initial_loss = 0, final_loss = 0;
  double optimized_loss = 0;  // full-set loss of what the optimizer produced
  bool reverted = false;
  int iterations = 0;         // optimizer steps taken (0: nothing to learn)
};

// `w` is float32 [OC, K]; `initial` is the round-to-nearest QuantizedWeights of
// w under `spec` (its shape may be the original conv shape [OC, IC, kh, kw];
// it is treated as [OC, K] and kept in the result). Errors (InvalidArgument):
// shape/size mismatches between w, initial, samples and bias; empty samples;
// non-finite weights or inputs; iterations < 1; learning_rate not > 0;
// batch_size < 1 (sgd/adam).
absl::StatusOr<OptimizeResult> OptimizeLayerWeights(const Tensor& w,
                                                    const QuantizedWeights& initial,
                                                    const WeightQuantSpec& spec,
                                                    const LayerSamples& samples,
                                                    const OptimizePolicy& policy);

}  // namespace qs::quant
