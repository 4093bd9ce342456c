// ai.onnx.ml SVMClassifier and SVMRegressor.
//
// Kernels on dot products d = x·v (dot_engine.h): LINEAR d, POLY
// (γd + c0)^degree, SIGMOID tanh(γd + c0), RBF exp(-γ(|x|² + |v|² - 2d)).
// Classifier, support-vector mode (libsvm one-vs-one): for each class pair
// i < j the decision value is Σ coef·K over both classes' vectors + rho;
// it votes for i when positive, else j; the label is the class with most
// votes (first on ties). Z: with prob_a/prob_b, Platt-scaled pairwise
// probabilities coupled into class probabilities (libsvm's method);
// otherwise the pairwise decision values ([-s, s] for two classes).
// Linear mode (no support vectors): scores = X·Wᵀ + rho[0], label argmax.
// Regressor: Σ coef·K + rho[0] (one_class: +1 / -1 by its sign).
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "engine/ml/dot_engine.h"
#include "engine/ml/ml_common.h"
#include "engine/ml/svm_math.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using ml::SvmModel;

absl::StatusOr<std::vector<TypedShape>> InferSvm(const OpContext& c, bool classifier) {
  ASSIGN_OR_RETURN(SvmModel m, ml::ReadSvm(c, classifier));
  const int64_t n = m.rows;
  if (!classifier) return std::vector<TypedShape>{{DataType::kFloat32, {n, 1}}};
  return std::vector<TypedShape>{{DataType::kInt64, {n}},
                                 {DataType::kFloat32, {n, m.ScoreColumns()}}};
}

class SvmKernel : public Kernel {
 public:
  KernelInfo Info() const override { return dot_->Info(); }

  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext& ctx) const override {
    const Tensor x = ml::AsFloat(in[0]);
    const int64_t n = m_.rows, v = m_.dot_rows;
    std::vector<double> k(n * v);
    RETURN_IF_ERROR(dot_->Dot(x.data<float>(), n, k.data(), ctx));
    m_.ApplyKernel(x.data<float>(), n, k.data());
    if (!classifier_) {
      out[0] = Tensor(DataType::kFloat32, {n, 1});
      m_.Regress(k.data(), n, out[0].data<float>());
      return absl::OkStatus();
    }
    out[0] = Tensor(DataType::kInt64, {n});
    Tensor z(DataType::kFloat32, {n, m_.ScoreColumns()});
    m_.Classify(k.data(), n, out[0].data<int64_t>(), z.data<float>());
    if (out.size() > 1) out[1] = z;
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c, bool classifier) {
    auto k = std::make_unique<SvmKernel>();
    k->classifier_ = classifier;
    ASSIGN_OR_RETURN(k->m_, ml::ReadSvm(c, classifier));
    ASSIGN_OR_RETURN(k->dot_, ml::MakeDotForNode(c, k->m_.dot_weights, k->m_.dot_rows,
                                                 k->m_.features, k->m_.rows));
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  bool classifier_ = false;
  SvmModel m_;
  std::unique_ptr<ml::DotEngine> dot_;
};

}  // namespace

extern const OpDef kSVMClassifierOp = {
    "SVMClassifier", 1, {},
    [](const OpContext& c) { return InferSvm(c, true); },
    [](const OpContext& c) { return SvmKernel::Build(c, true); }, kMlDomain};
extern const OpDef kSVMRegressorOp = {
    "SVMRegressor", 1, {},
    [](const OpContext& c) { return InferSvm(c, false); },
    [](const OpContext& c) { return SvmKernel::Build(c, false); }, kMlDomain};

}  // namespace qs
