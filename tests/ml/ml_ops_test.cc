// The ai.onnx.ml ops on hand-made models: tree node modes, missing values
// and aggregates against a naive reference walker (fp32 and binned), post
// transforms, Scaler/Normalizer/ZipMap, SVM modes, importer opset checks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "engine/compiled_model.h"
#include "engine/ml/ml_common.h"
#include "engine/ml/svm_math.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::OnnxBuilder;

onnx::AttributeProto Strings(const std::string& name, const std::vector<std::string>& v) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::STRINGS);
  for (const auto& s : v) a.add_strings(s);
  return a;
}

// A model with one ai.onnx.ml node reading input "x" [N, features].
OnnxBuilder MlModel(const std::string& op, int64_t features, const std::vector<std::string>& outs,
                    const test::OnnxAttrs& attrs, const std::vector<onnx::AttributeProto>& extra = {},
                    int64_t ml_opset = 3) {
  OnnxBuilder b(13);
  if (ml_opset > 0) {
    auto* imp = b.model().add_opset_import();
    imp->set_domain("ai.onnx.ml");
    imp->set_version(ml_opset);
  }
  b.Input("x", {-1, features});
  b.Node(op, {"x"}, outs, attrs);
  auto* node = b.graph().mutable_node(b.graph().node_size() - 1);
  node->set_domain("ai.onnx.ml");
  for (const auto& a : extra) *node->add_attribute() = a;
  for (const auto& o : outs) b.Output(o);
  return b;
}

std::vector<Tensor> RunMl(const OnnxBuilder& b, const Tensor& x) {
  auto model = test::CompileBuilt(b);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto out = (*model)->Run({{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<Tensor>{};
}

// A random forest of `trees` trees over `features` features whose splits
// use every mode and missing-value track, thresholds from a small set (so
// EQ/NEQ and ties happen), leaves with 1-2 target weights.
struct RandomTrees {
  std::vector<int64_t> tree, id, feature, yes, no, missing, leaf_tree, leaf_id, leaf_target;
  std::vector<float> value, weight;
  std::vector<std::string> modes;

  RandomTrees(int trees, int features, int targets, uint32_t seed) {
    std::mt19937 rng(seed);
    const char* kModes[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"};
    for (int t = 0; t < trees; ++t) {
      // A complete binary tree of depth 3, ids in heap order but emitted
      // shuffled (the importer must not rely on order).
      std::vector<int64_t> ids = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
      std::shuffle(ids.begin(), ids.end(), rng);
      for (int64_t n : ids) {
        tree.push_back(t);
        id.push_back(n);
        const bool leaf = n >= 7;
        feature.push_back(leaf ? 0 : rng() % features);
        value.push_back(leaf ? 0.f : static_cast<float>(rng() % 5) * 0.5f);
        modes.push_back(leaf ? "LEAF" : kModes[rng() % 6]);
        yes.push_back(leaf ? 0 : 2 * n + 1);
        no.push_back(leaf ? 0 : 2 * n + 2);
        missing.push_back(rng() % 2);
        if (leaf) {
          const int k = 1 + rng() % 2;
          for (int j = 0; j < k; ++j) {
            leaf_tree.push_back(t);
            leaf_id.push_back(n);
            leaf_target.push_back(rng() % targets);
            weight.push_back(static_cast<float>(static_cast<int>(rng() % 200) - 100) / 10.f);
          }
        }
      }
    }
  }

  // The reference: per row, per tree, walk by (tree, id) lookups.
  std::vector<double> Reference(const float* x, int features, int targets, const std::string& agg) const {
    std::map<std::pair<int64_t, int64_t>, size_t> at;
    for (size_t i = 0; i < tree.size(); ++i) at[{tree[i], id[i]}] = i;
    const int64_t trees = tree.empty() ? 0 : *std::max_element(tree.begin(), tree.end()) + 1;
    std::vector<double> out(targets, 0.0);
    std::vector<bool> hit(targets, false);
    for (int64_t t = 0; t < trees; ++t) {
      size_t i = at.at({t, 0});
      while (modes[i] != "LEAF") {
        const float v = x[feature[i]], th = value[i];
        bool go;
        const std::string& m = modes[i];
        if (std::isnan(v)) go = missing[i] != 0 || m == "BRANCH_NEQ";
        else if (m == "BRANCH_LEQ") go = v <= th;
        else if (m == "BRANCH_LT") go = v < th;
        else if (m == "BRANCH_GTE") go = v >= th;
        else if (m == "BRANCH_GT") go = v > th;
        else if (m == "BRANCH_EQ") go = v == th;
        else go = v != th;
        i = at.at({t, go ? yes[i] : no[i]});
      }
      for (size_t j = 0; j < leaf_tree.size(); ++j) {
        if (leaf_tree[j] != t || leaf_id[j] != id[i]) continue;
        double& o = out[leaf_target[j]];
        const double w = weight[j];
        if (agg == "MIN") o = hit[leaf_target[j]] ? std::min(o, w) : w;
        else if (agg == "MAX") o = hit[leaf_target[j]] ? std::max(o, w) : w;
        else o += w;
        hit[leaf_target[j]] = true;
      }
    }
    if (agg == "AVERAGE") {
      for (double& o : out) o /= static_cast<double>(trees);
    }
    return out;
  }

  OnnxBuilder Regressor(int features, int targets, const std::string& agg,
                        const test::OnnxAttrs& more = {}) const {
    test::OnnxAttrs attrs = {{"nodes_treeids", tree},       {"nodes_nodeids", id},
                             {"nodes_featureids", feature}, {"nodes_values", value},
                             {"nodes_truenodeids", yes},    {"nodes_falsenodeids", no},
                             {"nodes_missing_value_tracks_true", missing},
                             {"target_treeids", leaf_tree}, {"target_nodeids", leaf_id},
                             {"target_ids", leaf_target},   {"target_weights", weight},
                             {"n_targets", int64_t{targets}}, {"aggregate_function", agg}};
    attrs.insert(attrs.end(), more.begin(), more.end());
    return MlModel("TreeEnsembleRegressor", features, {"y"}, attrs, {Strings("nodes_modes", modes)});
  }
};

Tensor TreeInputs(int rows, int features, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor x(DataType::kFloat32, {rows, features});
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const int r = rng() % 12;
    x.data<float>()[i] = r == 11 ? NAN : static_cast<float>(r) * 0.25f;  // hits thresholds
  }
  return x;
}

class TreeModesTest : public testing::TestWithParam<std::string> {};

TEST_P(TreeModesTest, EveryModeAndMissingTrackMatchesTheReference) {
  const int features = 5, targets = 3, rows = 300;  // > one block, > parallel threshold
  RandomTrees trees(40, features, targets, 7);
  const Tensor x = TreeInputs(rows, features, 11);
  using Bits = std::vector<std::pair<std::string, int64_t>>;
  for (const Bits& quant : {Bits{}, Bits{{"qs_threshold_bits", 8}}, Bits{{"qs_threshold_bits", 16}}}) {
    OnnxBuilder b = trees.Regressor(features, targets, GetParam());
    // qs_* are the quantizer's internal attributes: set on the imported
    // graph, not in the file (the schema check would refuse them).
    auto graph = test::ImportBuilt(b);
    ASSERT_TRUE(graph.ok()) << graph.status();
    for (const auto& [k, v] : quant) graph->nodes[0].attributes[k] = v;
    auto model = CompiledModel::Compile(std::move(*graph));
    ASSERT_TRUE(model.ok()) << model.status();
    auto out = (*model)->Run({{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status();
    for (int r = 0; r < rows; ++r) {
      const auto want = trees.Reference(x.data<float>() + r * features, features, targets, GetParam());
      for (int t = 0; t < targets; ++t) {
        ASSERT_NEAR((*out)[0].data<float>()[r * targets + t], want[t], 1e-4)
            << "row " << r << " target " << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Aggregates, TreeModesTest,
                         testing::Values("SUM", "AVERAGE", "MIN", "MAX"));

}  // namespace
}  // namespace qs

namespace qs {
namespace {

TEST(MlPostTransformTest, Formulas) {
  float soft[3] = {1.f, 2.f, 3.f};
  ml::ApplyPostTransform(ml::PostTransform::kSoftmax, soft, 3);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(soft[0], std::exp(1.0) / z, 1e-6);
  EXPECT_NEAR(soft[2], std::exp(3.0) / z, 1e-6);
  float zero[3] = {0.f, 1.f, 1.f};
  ml::ApplyPostTransform(ml::PostTransform::kSoftmaxZero, zero, 3);
  EXPECT_EQ(zero[0], 0.f);
  EXPECT_NEAR(zero[1], 0.5, 1e-6);
  float logistic[2] = {0.f, 2.f};
  ml::ApplyPostTransform(ml::PostTransform::kLogistic, logistic, 2);
  EXPECT_NEAR(logistic[0], 0.5, 1e-7);
  EXPECT_NEAR(logistic[1], 1 / (1 + std::exp(-2.0)), 1e-7);
  // Probit is the inverse of the normal CDF.
  for (float p : {0.001f, 0.1f, 0.5f, 0.8f, 0.975f}) {
    const double x = ml::Probit(p);
    EXPECT_NEAR(0.5 * std::erfc(-x / std::sqrt(2.0)), p, 1e-6) << p;
  }
}

TEST(MlImportTest, OpsetsAndDomainsAreChecked) {
  const test::OnnxAttrs scaler = {{"offset", std::vector<float>{1.f}}, {"scale", std::vector<float>{2.f}}};
  EXPECT_TRUE(test::ImportBuilt(MlModel("Scaler", 2, {"y"}, scaler)).ok());
  auto no_import = test::ImportBuilt(MlModel("Scaler", 2, {"y"}, scaler, {}, 0));
  EXPECT_THAT(no_import.status().message(), testing::HasSubstr("does not import"));
  auto too_new = test::ImportBuilt(MlModel("Scaler", 2, {"y"}, scaler, {}, 4));
  EXPECT_EQ(too_new.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(too_new.status().message(), testing::HasSubstr("ai.onnx.ml opset 4"));
  // An ML op in the default domain is not an ai.onnx op.
  OnnxBuilder plain(13);
  plain.Input("x", {-1, 2}).Node("Scaler", {"x"}, {"y"}, scaler).Output("y");
  EXPECT_FALSE(test::ImportBuilt(plain).ok());
  // String labels are refused by name.
  auto strings = test::CompileBuilt(MlModel(
      "LinearClassifier", 2, {"label", "scores"}, {{"coefficients", std::vector<float>{1.f, 2.f}}},
      {Strings("classlabels_strings", {"a", "b"})}));
  EXPECT_EQ(strings.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(strings.status().message(), testing::HasSubstr("classlabels_strings"));
}

TEST(MlPreprocessTest, ScalerNormalizerZipMap) {
  const Tensor x = Tensor::FromVector<float>({2, 3}, {1.f, 2.f, -3.f, 0.f, 0.f, 0.f});
  auto s = RunMl(MlModel("Scaler", 3, {"y"}, {{"offset", std::vector<float>{1.f, 0.f, 1.f}},
                                             {"scale", std::vector<float>{2.f}}}), x);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_THAT(s[0].values<float>(), testing::ElementsAre(0.f, 4.f, -8.f, -2.f, 0.f, -2.f));
  auto l1 = RunMl(MlModel("Normalizer", 3, {"y"}, {{"norm", "L1"}}), x);
  EXPECT_THAT(l1[0].values<float>(), testing::ElementsAre(1.f / 6, 2.f / 6, -3.f / 6, 0.f, 0.f, 0.f));
  auto l2 = RunMl(MlModel("Normalizer", 3, {"y"}, {{"norm", "L2"}}), x);
  EXPECT_NEAR(l2[0].data<float>()[2], -3 / std::sqrt(14.0), 1e-6);
  auto mx = RunMl(MlModel("Normalizer", 3, {"y"}, {{"norm", "MAX"}}), x);
  EXPECT_FLOAT_EQ(mx[0].data<float>()[0], 0.5f);
  auto zip = RunMl(MlModel("ZipMap", 3, {"y"}, {{"classlabels_int64s", std::vector<int64_t>{4, 5, 6}}}), x);
  EXPECT_THAT(zip[0].values<float>(), testing::ElementsAreArray(x.values<float>()));
  auto bad = test::CompileBuilt(MlModel("ZipMap", 3, {"y"}, {{"classlabels_int64s", std::vector<int64_t>{4}}}));
  EXPECT_FALSE(bad.ok());
}

TEST(MlLinearTest, BinaryAndMulticlass) {
  const Tensor x = Tensor::FromVector<float>({2, 2}, {1.f, 2.f, -3.f, 0.5f});
  // One row, two labels: scores [-s, s], label 1 when s > 0.
  auto bin = RunMl(MlModel("LinearClassifier", 2, {"label", "scores"},
                         {{"coefficients", std::vector<float>{1.f, 1.f}},
                          {"intercepts", std::vector<float>{-1.f}},
                          {"classlabels_ints", std::vector<int64_t>{7, 9}}}), x);
  ASSERT_EQ(bin.size(), 2u);
  EXPECT_THAT(bin[0].values<int64_t>(), testing::ElementsAre(9, 7));
  EXPECT_THAT(bin[1].values<float>(), testing::ElementsAre(-2.f, 2.f, 3.5f, -3.5f));
  auto multi = RunMl(MlModel("LinearClassifier", 2, {"label", "scores"},
                           {{"coefficients", std::vector<float>{1.f, 0.f, 0.f, 1.f, -1.f, -1.f}},
                            {"classlabels_ints", std::vector<int64_t>{0, 1, 2}},
                            {"post_transform", "SOFTMAX"}}), x);
  EXPECT_THAT(multi[0].values<int64_t>(), testing::ElementsAre(1, 2));
  EXPECT_NEAR(multi[1].data<float>()[0] + multi[1].data<float>()[1] + multi[1].data<float>()[2], 1.0, 1e-6);
  auto reg = RunMl(MlModel("LinearRegressor", 2, {"y"},
                         {{"coefficients", std::vector<float>{2.f, 3.f}},
                          {"intercepts", std::vector<float>{1.f}}}), x);
  EXPECT_THAT(reg[0].values<float>(), testing::ElementsAre(9.f, -3.5f));
}

TEST(MlSvmTest, RegressorKernelsAndOneClass) {
  const Tensor x = Tensor::FromVector<float>({1, 2}, {1.f, 2.f});
  const std::vector<float> sv = {1.f, 0.f, 0.f, 1.f};
  auto run = [&](const char* kernel, int64_t one_class) {
    auto out = RunMl(MlModel("SVMRegressor", 2, {"y"},
                           {{"support_vectors", sv}, {"coefficients", std::vector<float>{0.5f, -1.f}},
                            {"rho", std::vector<float>{0.25f}}, {"n_supports", int64_t{2}},
                            {"kernel_type", kernel}, {"kernel_params", std::vector<float>{0.5f, 1.f, 2.f}},
                            {"one_class", one_class}}), x);
    return out.empty() ? NAN : out[0].data<float>()[0];
  };
  // dots: x·sv0 = 1, x·sv1 = 2; |x - sv0|² = 4, |x - sv1|² = 2.
  EXPECT_NEAR(run("LINEAR", 0), 0.5 * 1 - 2 + 0.25, 1e-6);
  EXPECT_NEAR(run("POLY", 0), 0.5 * std::pow(1.5, 2) - std::pow(2.0, 2) + 0.25, 1e-5);
  EXPECT_NEAR(run("SIGMOID", 0), 0.5 * std::tanh(1.5) - std::tanh(2.0) + 0.25, 1e-6);
  EXPECT_NEAR(run("RBF", 0), 0.5 * std::exp(-2.0) - std::exp(-1.0) + 0.25, 1e-6);
  EXPECT_EQ(run("LINEAR", 1), -1.f);
}

TEST(MlSvmTest, PairwiseCouplingGivesADistribution) {
  // Consistent pairwise probabilities from p = (0.5, 0.3, 0.2).
  const double p[3] = {0.5, 0.3, 0.2};
  std::vector<double> r(9, 0.0);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      if (i != j) r[i * 3 + j] = p[i] / (p[i] + p[j]);
    }
  }
  double out[3];
  ml::CouplePairwise(3, r, out);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(out[i], p[i], 1e-3);
}

}  // namespace
}  // namespace qs
