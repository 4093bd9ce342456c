// Per-sample comparison of a model variant's output with a reference
// variant's output for the same inputs: the measure of accuracy drift that
// needs no labels. Used on live traffic by the server's drift monitor.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs {

// How to read the scores of a classifier's output row.
enum class ScoreKind {
  kAuto,           // probabilities if the reference row is one, else logits
  kLogits,         // softmax is applied before KL
  kProbabilities,  // used as they are (clamped away from 0 for the log)
};

struct SampleComparison {
  int32_t reference_top1 = 0;
  int32_t top1 = 0;
  // KL(reference || variant) of the two score distributions, in nats, >= 0.
  double kl_divergence = 0;
  // ||variant - reference||_2 / ||reference||_2 of the raw output row
  // (||variant||_2 when the reference row is all zeros).
  double relative_error = 0;
};

// One comparison per sample (row along dimension 0). Both tensors must be
// float32 with the same shape, of rank >= 1; a sample is all elements of its
// row (classes = num_elements / rows).
absl::StatusOr<std::vector<SampleComparison>> CompareOutputs(const Tensor& reference,
                                                             const Tensor& variant,
                                                             ScoreKind kind = ScoreKind::kAuto);

// The output drift and feedback compare: the first float32 one (for neural
// models the first output; ai.onnx.ml classifiers put an int64 label first
// and the class probabilities second). nullptr when there is none.
const Tensor* FirstFloatOutput(const std::vector<Tensor>& outputs);

// The index of the largest score of each row of a float32 tensor [N, ...].
std::vector<int32_t> RowArgMax(const Tensor& scores);

}  // namespace qs
