#include "engine/ml/ml_common.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace qs::ml {

absl::StatusOr<PostTransform> ReadPostTransform(const Node& node) {
  const std::string s = node.GetString("post_transform", "NONE");
  if (s == "NONE") return PostTransform::kNone;
  if (s == "SOFTMAX") return PostTransform::kSoftmax;
  if (s == "LOGISTIC") return PostTransform::kLogistic;
  if (s == "SOFTMAX_ZERO") return PostTransform::kSoftmaxZero;
  if (s == "PROBIT") return PostTransform::kProbit;
  return absl::InvalidArgumentError(absl::StrCat(
      node.Describe(), ": post_transform '", s,
      "' is not one of NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT"));
}

float Probit(float p) {
  // erfinv by a rational start (Giles 2010) refined by two Newton steps on
  // erf in double precision.
  const double x = 2.0 * p - 1.0;
  if (x <= -1.0) return -INFINITY;
  if (x >= 1.0) return INFINITY;
  double w = -std::log((1.0 - x) * (1.0 + x)), r;
  if (w < 5.0) {
    w -= 2.5;
    r = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                     -0.00125372503, -0.00417768164, 0.246640727, 1.50140941}) {
      r = r * w + c;
    }
  } else {
    w = std::sqrt(w) - 3.0;
    r = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                     -0.0076224613, 0.00943887047, 1.00167406, 2.83297682}) {
      r = r * w + c;
    }
  }
  r *= x;
  for (int i = 0; i < 2; ++i) {
    r -= (std::erf(r) - x) / (2.0 / std::sqrt(M_PI) * std::exp(-r * r));
  }
  return static_cast<float>(std::sqrt(2.0) * r);
}

void ApplyPostTransform(PostTransform t, float* s, int64_t n) {
  switch (t) {
    case PostTransform::kNone: return;
    case PostTransform::kLogistic:
      for (int64_t i = 0; i < n; ++i) s[i] = 1.f / (1.f + std::exp(-s[i]));
      return;
    case PostTransform::kProbit:
      for (int64_t i = 0; i < n; ++i) s[i] = Probit(s[i]);
      return;
    case PostTransform::kSoftmax:
    case PostTransform::kSoftmaxZero: {
      const bool zero = t == PostTransform::kSoftmaxZero;
      float m = -INFINITY;
      for (int64_t i = 0; i < n; ++i) {
        if (!zero || s[i] != 0.f) m = std::max(m, s[i]);
      }
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (zero && s[i] == 0.f) continue;
        s[i] = std::exp(s[i] - m);
        sum += s[i];
      }
      if (sum == 0) return;
      for (int64_t i = 0; i < n; ++i) s[i] = static_cast<float>(s[i] / sum);
      return;
    }
  }
}

std::vector<float> FloatsAttr(const Node& node, const std::string& name) {
  auto it = node.attributes.find(name + "_as_tensor");
  if (it != node.attributes.end()) {
    if (const auto* t = std::get_if<Tensor>(&it->second)) {
      std::vector<float> v(t->num_elements());
      for (int64_t i = 0; i < t->num_elements(); ++i) {
        v[i] = static_cast<float>(t->ScalarAsDouble(i));
      }
      return v;
    }
  }
  return node.GetFloats(name);
}

absl::StatusOr<std::vector<int64_t>> IntClassLabels(const Node& node, const char* ints_name,
                                                    const char* strings_name) {
  if (node.HasAttr(strings_name)) {
    return absl::UnimplementedError(absl::StrCat(
        node.Describe(), ": string class labels ('", strings_name,
        "') are not supported; export integer labels ('", ints_name, "')"));
  }
  return node.GetInts(ints_name);
}

absl::Status RequireNumericInput(const OpContext& c) {
  switch (c.in_dtypes[0]) {
    case DataType::kFloat32:
    case DataType::kFloat64:
    case DataType::kInt32:
    case DataType::kInt64: return absl::OkStatus();
    default:
      return absl::UnimplementedError(absl::StrCat(
          c.node.Describe(), ": input of type ", DataTypeName(c.in_dtypes[0]),
          " is not supported (float, double, int32, int64)"));
  }
}

absl::StatusOr<Rows> InputRows(const OpContext& c) {
  const Shape& x = c.in_shapes[0];
  if (x.size() == 1) return Rows{1, x[0]};
  if (x.size() == 2) return Rows{x[0], x[1]};
  return absl::InvalidArgumentError(absl::StrCat(
      c.node.Describe(), ": input has shape ", ShapeToString(x), "; expected [N, F] or [F]"));
}

Tensor AsFloat(const Tensor& x) {
  if (x.dtype() == DataType::kFloat32) return x;
  Tensor f(DataType::kFloat32, x.shape());
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    f.data<float>()[i] = static_cast<float>(x.ScalarAsDouble(i));
  }
  return f;
}

void ArgmaxLabels(const float* scores, int64_t n, int64_t classes,
                  const std::vector<int64_t>& labels, int64_t* out) {
  for (int64_t r = 0; r < n; ++r) {
    const float* s = scores + r * classes;
    int64_t best = 0;
    for (int64_t k = 1; k < classes; ++k) {
      if (s[k] > s[best]) best = k;
    }
    out[r] = labels[best];
  }
}

void ExpandBinaryScores(const float* single, int64_t n, bool probability, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    out[2 * r] = probability ? 1.f - single[r] : -single[r];
    out[2 * r + 1] = single[r];
  }
}

}  // namespace qs::ml
