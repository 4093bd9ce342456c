// ai.onnx.ml TreeEnsembleClassifier and TreeEnsembleRegressor on the flat
// evaluator (tree_ensemble.h).
//
// Classifier: scores[E] = Σ leaf class weights + base_values, label =
// classlabels[argmax] (first on ties), then post_transform. A two-class
// model whose leaves all carry one class id (gradient boosting) computes one
// score s (+ the last base value) and outputs [-s, s] — or [1-s, s] when all
// weights are non-negative — before the transform; its label is class 1 when
// the second score is larger. Regressor: Y[n_targets] = aggregate + base_values.
//
// The quantizer sets `qs_threshold_bits` / `qs_leaf_bits` (8 or 16) on the
// node for binned variants (see tree_ensemble.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/ml/ml_common.h"
#include "engine/ml/tree_ensemble.h"
#include "engine/ops/dnnl_util.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using ml::PostTransform;

// Everything but the batch size: built once per compiled model and shared
// by the plans of every batch size (WeightCache::Share).
struct TreeModel {
  bool classifier = false, binary_single = false, weights_positive = false;
  PostTransform post = PostTransform::kNone;
  std::vector<int64_t> labels;
  std::vector<float> base;
  int64_t targets = 1;
  int32_t max_feature = -1;
  std::unique_ptr<ml::TreeEvaluator> eval;
  KernelInfo info;
};

absl::StatusOr<std::shared_ptr<const TreeModel>> ReadTreeModel(const OpContext& c,
                                                               bool classifier) {
  auto k = std::make_shared<TreeModel>();
  k->classifier = classifier;
  ASSIGN_OR_RETURN(k->post, ml::ReadPostTransform(c.node));
  int64_t targets = c.node.GetInt("n_targets", 1);
  if (classifier) {
    ASSIGN_OR_RETURN(k->labels, ml::IntClassLabels(c.node, "classlabels_int64s",
                                                   "classlabels_strings"));
    targets = static_cast<int64_t>(k->labels.size());
  }
  ASSIGN_OR_RETURN(ml::TreeEnsemble e,
                   ml::ReadTreeEnsemble(c.node, classifier ? "class_" : "target_", targets));
  k->max_feature = e.max_feature;
  std::vector<float> base = ml::FloatsAttr(c.node, "base_values");
  if (classifier && targets == 2 && !e.leaf_target.empty() &&
      std::all_of(e.leaf_target.begin(), e.leaf_target.end(),
                  [&](int32_t t) { return t == e.leaf_target[0]; })) {
    k->binary_single = true;
    k->weights_positive = std::all_of(e.leaf_weight.begin(), e.leaf_weight.end(),
                                      [](float w) { return w >= 0.f; });
    std::fill(e.leaf_target.begin(), e.leaf_target.end(), 0);
    e.targets = 1;
    base = base.empty() ? std::vector<float>{0.f} : std::vector<float>{base.back()};
  }
  k->targets = e.targets;
  if (base.empty()) base.assign(e.targets, 0.f);
  if (static_cast<int64_t>(base.size()) != e.targets) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": base_values has ", base.size(), " values; expected ", e.targets));
  }
  k->base = base;
  ml::TreeQuantization q{static_cast<int>(c.node.GetInt("qs_threshold_bits", 0)),
                         static_cast<int>(c.node.GetInt("qs_leaf_bits", 0))};
  auto eval = ml::MakeTreeEvaluator(e, q);
  if (!eval.ok()) {
    return absl::Status(eval.status().code(),
                        absl::StrCat(c.node.Describe(), ": ", eval.status().message()));
  }
  k->eval = std::move(*eval);
  const std::string codes = q.threshold_bits ? absl::StrCat("u", q.threshold_bits) : "f32";
  k->info.impl = absl::StrCat("flat_trees:", e.roots.size(), "x", codes);
  k->info.src_dt = codes;
  k->info.wei_dt = q.leaf_bits ? absl::StrCat("s", q.leaf_bits) : "f32";
  k->info.dst_dt = "f32";
  k->info.weight_bytes = k->eval->bytes() + static_cast<int64_t>(base.size()) * 4;
  return std::shared_ptr<const TreeModel>(std::move(k));
}

class TreeKernel : public Kernel {
 public:
  KernelInfo Info() const override { return m_->info; }

  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    const TreeModel& m = *m_;
    const Tensor x = ml::AsFloat(in[0]);
    const int64_t n = x.rank() == 1 ? 1 : x.shape()[0];
    const int64_t features = x.rank() == 1 ? x.shape()[0] : x.shape()[1];
    const int64_t targets = m.targets;
    std::vector<float> raw(n * targets);
    m.eval->Evaluate(x.data<float>(), n, features, raw.data());
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t t = 0; t < targets; ++t) raw[r * targets + t] += m.base[t];
    }
    if (!m.classifier) {
      out[0] = Tensor(DataType::kFloat32, {n, targets});
      float* y = out[0].data<float>();
      std::copy(raw.begin(), raw.end(), y);
      for (int64_t r = 0; r < n; ++r) ml::ApplyPostTransform(m.post, y + r * targets, targets);
      return absl::OkStatus();
    }
    const int64_t classes = static_cast<int64_t>(m.labels.size());
    Tensor z(DataType::kFloat32, {n, classes});
    if (m.binary_single) {
      ml::ExpandBinaryScores(raw.data(), n, m.weights_positive, z.data<float>());
    } else {
      std::copy(raw.begin(), raw.end(), z.data<float>());
    }
    out[0] = Tensor(DataType::kInt64, {n});
    ml::ArgmaxLabels(z.data<float>(), n, classes, m.labels, out[0].data<int64_t>());
    for (int64_t r = 0; r < n; ++r) ml::ApplyPostTransform(m.post, z.data<float>() + r * classes, classes);
    if (out.size() > 1) out[1] = z;
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c, bool classifier) {
    ASSIGN_OR_RETURN(ml::Rows rows, ml::InputRows(c));
    const std::string key = absl::StrCat("ai.onnx.ml tree ", c.node.name);
    auto k = std::make_unique<TreeKernel>();
    if (c.weights != nullptr) {
      k->m_ = std::static_pointer_cast<const TreeModel>(c.weights->FindShared(key));
    }
    if (k->m_ == nullptr) {
      ASSIGN_OR_RETURN(k->m_, ReadTreeModel(c, classifier));
      if (c.weights != nullptr) {
        k->m_ = std::static_pointer_cast<const TreeModel>(c.weights->Share(key, k->m_));
      }
    }
    if (k->m_->max_feature >= rows.features) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.node.Describe(), ": a split reads feature ", k->m_->max_feature,
          " but the input has ", rows.features));
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  std::shared_ptr<const TreeModel> m_;
};

absl::StatusOr<std::vector<TypedShape>> InferTree(const OpContext& c, bool classifier) {
  RETURN_IF_ERROR(ml::RequireNumericInput(c));
  ASSIGN_OR_RETURN(ml::Rows rows, ml::InputRows(c));
  if (!classifier) {
    const int64_t targets = c.node.GetInt("n_targets", 1);
    if (targets < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": n_targets is ", targets, "; expected >= 1"));
    }
    return std::vector<TypedShape>{{DataType::kFloat32, {rows.n, targets}}};
  }
  ASSIGN_OR_RETURN(auto labels,
                   ml::IntClassLabels(c.node, "classlabels_int64s", "classlabels_strings"));
  if (labels.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": classlabels_int64s is empty"));
  }
  return std::vector<TypedShape>{{DataType::kInt64, {rows.n}},
                                 {DataType::kFloat32, {rows.n, static_cast<int64_t>(labels.size())}}};
}

}  // namespace

extern const OpDef kTreeEnsembleClassifierOp = {
    "TreeEnsembleClassifier", 1, {},
    [](const OpContext& c) { return InferTree(c, true); },
    [](const OpContext& c) { return TreeKernel::Build(c, true); }, kMlDomain};
extern const OpDef kTreeEnsembleRegressorOp = {
    "TreeEnsembleRegressor", 1, {},
    [](const OpContext& c) { return InferTree(c, false); },
    [](const OpContext& c) { return TreeKernel::Build(c, false); }, kMlDomain};

}  // namespace qs
