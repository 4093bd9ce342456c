#include "engine/ml/svm_math.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace qs::ml {
namespace {

absl::Status Bad(const Node& node, const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", msg));
}

}  // namespace

int64_t SvmModel::ScoreColumns() const {
  const int64_t e = Classes();
  if (linear_mode || !prob_a.empty()) return e;
  return e == 2 ? 2 : e * (e - 1) / 2;
}

void SvmModel::ApplyKernel(const float* x, int64_t n, double* k) const {
  for (int64_t r = 0; r < n; ++r) {
    double xx = 0;
    if (kernel == SvmKernelType::kRbf) {
      for (int64_t f = 0; f < features; ++f) xx += static_cast<double>(x[r * features + f]) * x[r * features + f];
    }
    for (int64_t j = 0; j < dot_rows; ++j) {
      double& d = k[r * dot_rows + j];
      switch (kernel) {
        case SvmKernelType::kLinear: break;
        case SvmKernelType::kPoly: d = std::pow(gamma * d + coef0, degree); break;
        case SvmKernelType::kSigmoid: d = std::tanh(gamma * d + coef0); break;
        case SvmKernelType::kRbf:
          d = std::exp(-gamma * std::max(0.0, xx + sv_norms[j] - 2 * d));
          break;
      }
    }
  }
}

void CouplePairwise(int64_t k, const std::vector<double>& r, double* p) {
  std::vector<double> q(k * k), qp(k);
  for (int64_t t = 0; t < k; ++t) {
    p[t] = 1.0 / k;
    q[t * k + t] = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (j == t) continue;
      q[t * k + t] += r[j * k + t] * r[j * k + t];
      q[t * k + j] = -r[j * k + t] * r[t * k + j];
    }
  }
  const int64_t max_iter = std::max<int64_t>(100, k);
  const double eps = 0.005 / k;
  for (int64_t iter = 0; iter < max_iter; ++iter) {
    double pqp = 0;
    for (int64_t t = 0; t < k; ++t) {
      qp[t] = 0;
      for (int64_t j = 0; j < k; ++j) qp[t] += q[t * k + j] * p[j];
      pqp += p[t] * qp[t];
    }
    double max_error = 0;
    for (int64_t t = 0; t < k; ++t) max_error = std::max(max_error, std::fabs(qp[t] - pqp));
    if (max_error < eps) break;
    for (int64_t t = 0; t < k; ++t) {
      const double diff = (-qp[t] + pqp) / q[t * k + t];
      p[t] += diff;
      pqp = (pqp + diff * (diff * q[t * k + t] + 2 * qp[t])) / (1 + diff) / (1 + diff);
      for (int64_t j = 0; j < k; ++j) {
        qp[j] = (qp[j] + diff * q[t * k + j]) / (1 + diff);
        p[j] /= (1 + diff);
      }
    }
  }
}

void SvmModel::Classify(const double* kv, int64_t n, int64_t* labels_out, float* z) const {
  const int64_t e = Classes(), cols = ScoreColumns();
  for (int64_t r = 0; r < n; ++r) {
    const double* kr = kv + r * dot_rows;
    float* zr = z + r * cols;
    if (linear_mode) {
      for (int64_t c = 0; c < cols; ++c) zr[c] = static_cast<float>(kr[c] + rho[0]);
      ArgmaxLabels(zr, 1, cols, labels, labels_out + r);
      ApplyPostTransform(post, zr, cols);
      continue;
    }
    std::vector<int64_t> votes(e, 0);
    std::vector<double> dec;
    for (int64_t i = 0, p = 0; i < e; ++i) {
      for (int64_t j = i + 1; j < e; ++j, ++p) {
        double s = rho[p];
        for (int64_t m = 0; m < vectors_per_class[i]; ++m) {
          s += coefficients[(j - 1) * dot_rows + starts[i] + m] * kr[starts[i] + m];
        }
        for (int64_t m = 0; m < vectors_per_class[j]; ++m) {
          s += coefficients[i * dot_rows + starts[j] + m] * kr[starts[j] + m];
        }
        ++votes[s > 0 ? i : j];
        dec.push_back(s);
      }
    }
    labels_out[r] = labels[std::max_element(votes.begin(), votes.end()) - votes.begin()];
    if (!prob_a.empty()) {
      std::vector<double> pr(e * e, 0.0), probs(e);
      for (int64_t i = 0, p = 0; i < e; ++i) {
        for (int64_t j = i + 1; j < e; ++j, ++p) {
          const double f = dec[p] * prob_a[p] + prob_b[p];
          double v = f >= 0 ? std::exp(-f) / (1 + std::exp(-f)) : 1 / (1 + std::exp(f));
          v = std::clamp(v, 1e-7, 1 - 1e-7);
          pr[i * e + j] = v;
          pr[j * e + i] = 1 - v;
        }
      }
      CouplePairwise(e, pr, probs.data());
      for (int64_t c = 0; c < e; ++c) zr[c] = static_cast<float>(probs[c]);
      ApplyPostTransform(post, zr, cols);
    } else if (e == 2) {
      float s = static_cast<float>(dec[0]);
      if (post == PostTransform::kNone) {
        zr[0] = -s;
        zr[1] = s;
      } else {
        ApplyPostTransform(post, &s, 1);
        zr[0] = 1.f - s;
        zr[1] = s;
      }
    } else {
      for (int64_t c = 0; c < cols; ++c) zr[c] = static_cast<float>(dec[c]);
      ApplyPostTransform(post, zr, cols);
    }
  }
}

void SvmModel::Regress(const double* kv, int64_t n, float* y) const {
  for (int64_t r = 0; r < n; ++r) {
    double s = rho.empty() ? 0.0 : rho[0];
    if (linear_mode) {
      s += kv[r * dot_rows];
    } else {
      for (int64_t j = 0; j < dot_rows; ++j) s += coefficients[j] * kv[r * dot_rows + j];
    }
    if (one_class) s = s > 0 ? 1.0 : -1.0;
    y[r] = static_cast<float>(s);
    ApplyPostTransform(post, y + r, 1);
  }
}

absl::StatusOr<SvmModel> ReadSvm(const OpContext& c, bool classifier) {
  const Node& node = c.node;
  RETURN_IF_ERROR(RequireNumericInput(c));
  ASSIGN_OR_RETURN(Rows rows, InputRows(c));
  SvmModel m;
  m.rows = rows.n;
  m.features = rows.features;
  ASSIGN_OR_RETURN(m.post, ReadPostTransform(node));
  const std::string kernel = node.GetString("kernel_type", "LINEAR");
  if (kernel == "LINEAR") m.kernel = SvmKernelType::kLinear;
  else if (kernel == "POLY") m.kernel = SvmKernelType::kPoly;
  else if (kernel == "RBF") m.kernel = SvmKernelType::kRbf;
  else if (kernel == "SIGMOID") m.kernel = SvmKernelType::kSigmoid;
  else return Bad(node, absl::StrCat("kernel_type '", kernel, "' is not LINEAR, POLY, RBF or SIGMOID"));
  const auto params = node.GetFloats("kernel_params");
  if (!params.empty() && params.size() != 3) {
    return Bad(node, "kernel_params must be [gamma, coef0, degree]");
  }
  if (params.empty() && m.kernel != SvmKernelType::kLinear) {
    return Bad(node, absl::StrCat("kernel ", kernel, " needs kernel_params"));
  }
  if (!params.empty()) {
    m.gamma = params[0];
    m.coef0 = params[1];
    m.degree = params[2];
  }
  m.coefficients = node.GetFloats("coefficients");
  m.rho = node.GetFloats("rho");
  m.prob_a = node.GetFloats("prob_a");
  m.prob_b = node.GetFloats("prob_b");
  m.one_class = node.GetInt("one_class", 0) != 0;
  const auto sv = node.GetFloats("support_vectors");
  if (m.coefficients.empty()) return Bad(node, "coefficients is empty");
  if (m.rho.empty()) return Bad(node, "rho is empty");
  if (m.prob_a.size() != m.prob_b.size()) return Bad(node, "prob_a and prob_b differ in length");
  int64_t vectors = 0;
  if (classifier) {
    ASSIGN_OR_RETURN(m.labels, IntClassLabels(node, "classlabels_ints", "classlabels_strings"));
    if (m.labels.empty()) return Bad(node, "classlabels_ints is empty");
    m.vectors_per_class = node.GetInts("vectors_per_class");
    for (int64_t v : m.vectors_per_class) {
      if (v < 0 || v > static_cast<int64_t>(sv.size())) {
        return Bad(node, absl::StrCat("vectors_per_class has a count of ", v));
      }
      m.starts.push_back(vectors);
      vectors += v;
    }
  } else {
    vectors = node.GetInt("n_supports", 0);
    if (vectors < 0) return Bad(node, absl::StrCat("n_supports is ", vectors));
  }
  m.linear_mode = vectors == 0;
  if (m.linear_mode) {
    const int64_t outputs = classifier ? m.Classes() : 1;
    if (static_cast<int64_t>(m.coefficients.size()) != outputs * m.features) {
      return Bad(node, absl::StrCat("linear SVM: coefficients has ", m.coefficients.size(),
                                    " values; expected ", outputs * m.features));
    }
    m.kernel = SvmKernelType::kLinear;
    m.dot_weights = m.coefficients;
    m.dot_rows = outputs;
    return m;
  }
  if (vectors > static_cast<int64_t>(sv.size()) ||
      static_cast<int64_t>(sv.size()) != vectors * m.features) {
    return Bad(node, absl::StrCat("support_vectors has ", sv.size(), " values; expected ",
                                  vectors, " vectors × ", m.features, " features"));
  }
  const int64_t e = classifier ? m.Classes() : 2;
  if (classifier && static_cast<int64_t>(m.vectors_per_class.size()) != e) {
    return Bad(node, "vectors_per_class needs one count per class label");
  }
  const int64_t pairs = e * (e - 1) / 2;
  if (static_cast<int64_t>(m.coefficients.size()) < (e - 1) * vectors) {
    return Bad(node, absl::StrCat("coefficients has ", m.coefficients.size(), " values; expected ",
                                  (e - 1) * vectors));
  }
  if (classifier && static_cast<int64_t>(m.rho.size()) < pairs) {
    return Bad(node, absl::StrCat("rho has ", m.rho.size(), " values; expected ", pairs));
  }
  if (!m.prob_a.empty() && static_cast<int64_t>(m.prob_a.size()) < pairs) {
    return Bad(node, absl::StrCat("prob_a has ", m.prob_a.size(), " values; expected ", pairs));
  }
  m.dot_weights = sv;
  m.dot_rows = vectors;
  for (int64_t j = 0; j < vectors; ++j) {
    double s = 0;
    for (int64_t f = 0; f < m.features; ++f) s += static_cast<double>(sv[j * m.features + f]) * sv[j * m.features + f];
    m.sv_norms.push_back(s);
  }
  return m;
}

}  // namespace qs::ml
