// Classifier evaluation of a compiled model on a labeled dataset: accuracy
// against labels and per-sample predictions (for top-1 agreement between
// variants of the same model).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/compiled_model.h"
#include "engine/data/dataset.h"

namespace qs {

struct EvaluationResult {
  int64_t samples = 0;
  int64_t correct = 0;             // 0 when the dataset has no labels
  double accuracy = 0.0;           // correct / samples, in [0, 1]
  std::vector<int32_t> predictions;  // argmax of the first output, per sample
  double seconds = 0.0;            // wall time of all batches
};

// Runs the model's first input over the dataset in batches of `batch_size`;
// the first output must be [N, classes] (or [N, ..., classes]: argmax over
// the last dim of each sample's flattened scores), or an int64 label per
// sample (the ai.onnx.ml classifiers), taken as the prediction.
absl::StatusOr<EvaluationResult> EvaluateClassifier(const CompiledModel& model,
                                                    const Dataset& data,
                                                    int64_t batch_size);

// Fraction of positions where a and b agree (0 if sizes differ or empty).
double Top1Agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

// Index of the largest of `n` scores (first on ties).
int32_t ArgMax(const float* scores, int64_t n);

}  // namespace qs
