#include "engine/evaluate.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace qs {

int32_t ArgMax(const float* scores, int64_t n) {
  int32_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (scores[i] > scores[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

absl::StatusOr<EvaluationResult> EvaluateClassifier(const CompiledModel& model,
                                                    const Dataset& data,
                                                    int64_t batch_size) {
  if (model.inputs().size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "evaluation feeds one input; the model has ", model.inputs().size()));
  }
  if (batch_size < 1) return absl::InvalidArgumentError("batch size must be >= 1");
  EvaluationResult result;
  result.samples = data.size();
  result.predictions.reserve(data.size());
  const bool labeled = !data.labels.empty();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t count = std::min(batch_size, data.size() - begin);
    ASSIGN_OR_RETURN(std::vector<Tensor> out, model.RunOrdered({data.Batch(begin, count)}));
    const Tensor& scores = out[0];
    if (scores.dtype() == DataType::kInt64 && scores.num_elements() == count) {
      // A classifier's label output (ai.onnx.ml ops): the prediction itself.
      for (int64_t i = 0; i < count; ++i) {
        const int64_t label = scores.data<int64_t>()[i];
        result.predictions.push_back(static_cast<int32_t>(label));
        if (labeled && label == data.labels.data<int64_t>()[begin + i]) ++result.correct;
      }
      continue;
    }
    if (scores.dtype() != DataType::kFloat32 || scores.rank() < 1 ||
        scores.shape()[0] != count || scores.num_elements() % count != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the model's first output ", ShapeToString(scores.shape()),
          " is not one row of class scores per sample"));
    }
    const int64_t classes = scores.num_elements() / count;
    for (int64_t i = 0; i < count; ++i) {
      int32_t pred = ArgMax(scores.data<float>() + i * classes, classes);
      result.predictions.push_back(pred);
      if (labeled && pred == data.labels.data<int64_t>()[begin + i]) ++result.correct;
    }
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.accuracy = labeled && result.samples > 0
                        ? static_cast<double>(result.correct) / result.samples
                        : 0.0;
  return result;
}

double Top1Agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.empty() || a.size() != b.size()) return 0.0;
  int64_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i] ? 1 : 0;
  return static_cast<double>(same) / a.size();
}

}  // namespace qs
