#include "engine/output_compare.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/evaluate.h"

namespace qs {

namespace {

// A row that already is a probability distribution (softmax applied inside
// the model): non-negative entries summing to 1.
bool IsDistribution(const float* row, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!(row[i] >= 0.0f)) return false;  // also rejects NaN
    sum += row[i];
  }
  return std::abs(sum - 1.0) < 1e-3;
}

// log-softmax of `row` into `out` (numerically stable).
void LogSoftmax(const float* row, int64_t n, std::vector<double>& out) {
  out.resize(n);
  double max = row[0];
  for (int64_t i = 1; i < n; ++i) max = std::max<double>(max, row[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(row[i] - max);
  const double log_sum = std::log(sum) + max;
  for (int64_t i = 0; i < n; ++i) out[i] = row[i] - log_sum;
}

// Probabilities are clamped here before the log, so that a class the
// variant rules out completely costs a large but finite divergence.
constexpr double kMinProbability = 1e-12;

void LogProbabilities(const float* row, int64_t n, std::vector<double>& out) {
  out.resize(n);
  for (int64_t i = 0; i < n; ++i) out[i] = std::log(std::max<double>(row[i], kMinProbability));
}

}  // namespace

const Tensor* FirstFloatOutput(const std::vector<Tensor>& outputs) {
  for (const Tensor& t : outputs) {
    if (t.dtype() == DataType::kFloat32) return &t;
  }
  return nullptr;
}

std::vector<int32_t> RowArgMax(const Tensor& scores) {
  std::vector<int32_t> top1;
  if (scores.dtype() != DataType::kFloat32 || scores.rank() < 1 || scores.shape()[0] <= 0) {
    return top1;
  }
  const int64_t rows = scores.shape()[0];
  const int64_t classes = scores.num_elements() / rows;
  top1.reserve(rows);
  for (int64_t r = 0; r < rows; ++r) {
    top1.push_back(classes > 0 ? ArgMax(scores.data<float>() + r * classes, classes) : 0);
  }
  return top1;
}

absl::StatusOr<std::vector<SampleComparison>> CompareOutputs(const Tensor& reference,
                                                             const Tensor& variant,
                                                             ScoreKind kind) {
  if (reference.dtype() != DataType::kFloat32 || variant.dtype() != DataType::kFloat32) {
    return absl::InvalidArgumentError("drift comparison needs float32 outputs");
  }
  if (reference.shape() != variant.shape() || reference.rank() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("drift comparison needs outputs of one shape with a batch dimension; got ",
                     ShapeToString(reference.shape()), " and ", ShapeToString(variant.shape())));
  }
  const int64_t rows = reference.shape()[0];
  std::vector<SampleComparison> result;
  if (rows <= 0) return result;
  const int64_t n = reference.num_elements() / rows;
  if (n == 0) return result;
  result.reserve(rows);
  std::vector<double> log_ref, log_var;
  for (int64_t r = 0; r < rows; ++r) {
    const float* ref = reference.data<float>() + r * n;
    const float* var = variant.data<float>() + r * n;
    SampleComparison c;
    c.reference_top1 = ArgMax(ref, n);
    c.top1 = ArgMax(var, n);

    double diff2 = 0, ref2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(var[i]) - ref[i];
      diff2 += d * d;
      ref2 += static_cast<double>(ref[i]) * ref[i];
    }
    c.relative_error = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);

    const bool probabilities = kind == ScoreKind::kProbabilities ||
                               (kind == ScoreKind::kAuto && IsDistribution(ref, n));
    if (probabilities) {
      LogProbabilities(ref, n, log_ref);
      LogProbabilities(var, n, log_var);
    } else {
      LogSoftmax(ref, n, log_ref);
      LogSoftmax(var, n, log_var);
    }
    double kl = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double p = std::exp(log_ref[i]);
      if (p > 0) kl += p * (log_ref[i] - log_var[i]);
    }
    // Rounding can leave a tiny negative value for identical rows.
    c.kl_divergence = std::isfinite(kl) ? std::max(kl, 0.0) : kl;
    result.push_back(c);
  }
  return result;
}

}  // namespace qs
