// The SVM ops' model (attributes checked once) and their arithmetic after
// the dot products: kernel functions, one-vs-one votes, Platt scaling and
// libsvm's pairwise-coupling class probabilities.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kernel.h"
#include "engine/ml/ml_common.h"

namespace qs::ml {

enum class SvmKernelType { kLinear, kPoly, kRbf, kSigmoid };

struct SvmModel {
  int64_t rows = 0, features = 0;
  bool linear_mode = false;         // no support vectors: dot_weights = coefficients
  std::vector<float> dot_weights;   // [dot_rows, features]: support vectors or coefficients
  int64_t dot_rows = 0;
  std::vector<double> sv_norms;     // |v|² per support vector (RBF)
  SvmKernelType kernel = SvmKernelType::kLinear;
  double gamma = 0, coef0 = 0, degree = 0;
  std::vector<float> coefficients, rho, prob_a, prob_b;
  std::vector<int64_t> vectors_per_class, starts, labels;
  bool one_class = false;
  PostTransform post = PostTransform::kNone;

  int64_t Classes() const { return static_cast<int64_t>(labels.size()); }
  // Columns of the classifier's Z output.
  int64_t ScoreColumns() const;
  // k[n, dot_rows] holds dot products; replaces them by kernel values.
  void ApplyKernel(const float* x, int64_t n, double* k) const;
  void Classify(const double* k, int64_t n, int64_t* labels_out, float* z) const;
  void Regress(const double* k, int64_t n, float* y) const;
};

absl::StatusOr<SvmModel> ReadSvm(const OpContext& c, bool classifier);

// libsvm's multiclass_probability: class probabilities p[k] from the
// pairwise probabilities r (k×k, r[i][j] = P(i | i or j)).
void CouplePairwise(int64_t k, const std::vector<double>& r, double* p);

}  // namespace qs::ml
