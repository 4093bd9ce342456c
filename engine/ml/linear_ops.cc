// ai.onnx.ml LinearClassifier and LinearRegressor: scores = X·Wᵀ +
// intercepts, then post_transform. A classifier with one coefficient row
// and two labels scores s and outputs [-s, s] before the transform (label 1
// when s > 0). The dot products run in fp32 (double accumulation) or, in a
// quantized variant, as a oneDNN int8 inner product (dot_engine.h).
#include "absl/strings/str_cat.h"
#include "engine/ml/dot_engine.h"
#include "engine/ml/ml_common.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

struct LinearShape {
  int64_t rows = 0, features = 0, outputs = 0;  // outputs: coefficient rows
  std::vector<int64_t> labels;                  // classifier only
};

absl::StatusOr<LinearShape> ReadLinearShape(const OpContext& c, bool classifier) {
  RETURN_IF_ERROR(ml::RequireNumericInput(c));
  ASSIGN_OR_RETURN(ml::Rows rows, ml::InputRows(c));
  LinearShape s{rows.n, rows.features, 0, {}};
  const int64_t coefs = static_cast<int64_t>(c.node.GetFloats("coefficients").size());
  if (rows.features <= 0 || coefs == 0 || coefs % rows.features != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": coefficients has ", coefs,
        " values, not a positive multiple of the input's ", rows.features, " features"));
  }
  s.outputs = coefs / rows.features;
  const auto intercepts = c.node.GetFloats("intercepts");
  if (!intercepts.empty() && static_cast<int64_t>(intercepts.size()) != s.outputs) {
    return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": intercepts has ",
                                                   intercepts.size(), " values; expected ",
                                                   s.outputs));
  }
  if (classifier) {
    ASSIGN_OR_RETURN(s.labels, ml::IntClassLabels(c.node, "classlabels_ints",
                                                  "classlabels_strings"));
    const int64_t e = static_cast<int64_t>(s.labels.size());
    if (!(e == s.outputs || (s.outputs == 1 && e == 2))) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": ", s.outputs, " coefficient rows for ", e,
          " class labels (expected one row per class, or one row for two classes)"));
    }
  } else if (c.node.GetInt("targets", 1) != s.outputs) {
    return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": targets is ",
                                                   c.node.GetInt("targets", 1), " but there are ",
                                                   s.outputs, " coefficient rows"));
  }
  return s;
}

class LinearKernel : public Kernel {
 public:
  KernelInfo Info() const override { return dot_->Info(); }

  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    const Tensor x = ml::AsFloat(in[0]);
    const int64_t n = shape_.rows, m = shape_.outputs;
    std::vector<double> dots(n * m);
    RETURN_IF_ERROR(dot_->Dot(x.data<float>(), n, dots.data(), ctx));
    Tensor scores(DataType::kFloat32, {n, m});
    float* s = scores.data<float>();
    for (int64_t i = 0; i < n * m; ++i) {
      s[i] = static_cast<float>(dots[i] + (intercepts_.empty() ? 0.0 : intercepts_[i % m]));
    }
    if (!classifier_) {
      for (int64_t r = 0; r < n; ++r) ml::ApplyPostTransform(post_, s + r * m, m);
      out[0] = scores;
      return absl::OkStatus();
    }
    const int64_t classes = static_cast<int64_t>(shape_.labels.size());
    Tensor z(DataType::kFloat32, {n, classes});
    if (m == 1 && classes == 2) {
      ml::ExpandBinaryScores(s, n, false, z.data<float>());
    } else {
      z = scores;
    }
    out[0] = Tensor(DataType::kInt64, {n});
    ml::ArgmaxLabels(z.data<float>(), n, classes, shape_.labels, out[0].data<int64_t>());
    for (int64_t r = 0; r < n; ++r) ml::ApplyPostTransform(post_, z.data<float>() + r * classes, classes);
    if (out.size() > 1) out[1] = z;
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c, bool classifier) {
    auto k = std::make_unique<LinearKernel>();
    k->classifier_ = classifier;
    ASSIGN_OR_RETURN(k->shape_, ReadLinearShape(c, classifier));
    ASSIGN_OR_RETURN(k->post_, ml::ReadPostTransform(c.node));
    k->intercepts_ = c.node.GetFloats("intercepts");
    ASSIGN_OR_RETURN(k->dot_, ml::MakeDotForNode(c, c.node.GetFloats("coefficients"),
                                                 k->shape_.outputs, k->shape_.features,
                                                 k->shape_.rows));
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  bool classifier_ = false;
  LinearShape shape_;
  ml::PostTransform post_ = ml::PostTransform::kNone;
  std::vector<float> intercepts_;
  std::unique_ptr<ml::DotEngine> dot_;
};

absl::StatusOr<std::vector<TypedShape>> InferLinear(const OpContext& c, bool classifier) {
  ASSIGN_OR_RETURN(LinearShape s, ReadLinearShape(c, classifier));
  RETURN_IF_ERROR(ml::ReadPostTransform(c.node).status());
  if (!classifier) return std::vector<TypedShape>{{DataType::kFloat32, {s.rows, s.outputs}}};
  return std::vector<TypedShape>{
      {DataType::kInt64, {s.rows}},
      {DataType::kFloat32, {s.rows, static_cast<int64_t>(s.labels.size())}}};
}

}  // namespace

extern const OpDef kLinearClassifierOp = {
    "LinearClassifier", 1, {},
    [](const OpContext& c) { return InferLinear(c, true); },
    [](const OpContext& c) { return LinearKernel::Build(c, true); }, kMlDomain};
extern const OpDef kLinearRegressorOp = {
    "LinearRegressor", 1, {},
    [](const OpContext& c) { return InferLinear(c, false); },
    [](const OpContext& c) { return LinearKernel::Build(c, false); }, kMlDomain};

}  // namespace qs
