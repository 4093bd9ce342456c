// The scikit-learn models of models/ml (tools/ml/generate_sklearn_models.py)
// against scikit-learn's own predictions: labels exactly, probabilities /
// decision scores within 1e-5, regression within 1e-5 relative.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/compiled_model.h"
#include "engine/data/npy.h"
#include "engine/onnx_importer.h"

namespace qs {
namespace {

const std::string kDir = QS_SOURCE_DIR "/models/ml/";

struct Case {
  const char* model;
  const char* dataset;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.model; }

class SklearnModelTest : public testing::TestWithParam<Case> {
 protected:
  std::vector<Tensor> RunModel(int64_t limit = 0) {
    auto graph = ImportOnnxFile(kDir + GetParam().model + ".onnx");
    EXPECT_TRUE(graph.ok()) << graph.status();
    auto model = CompiledModel::Compile(std::move(*graph));
    EXPECT_TRUE(model.ok()) << model.status();
    auto x = ReadNpy(kDir + GetParam().dataset + "_test_x.npy");
    EXPECT_TRUE(x.ok()) << x.status();
    Tensor input = *x;
    if (limit > 0) {
      Shape s = input.shape();
      s[0] = limit;
      Tensor part(DataType::kFloat32, s);
      std::copy(input.data<float>(), input.data<float>() + part.num_elements(), part.data<float>());
      input = part;
    }
    auto out = (*model)->Run({{"input", input}});
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : std::vector<Tensor>{};
  }
  Tensor Expected(const std::string& suffix) {
    auto t = ReadNpy(kDir + GetParam().model + suffix);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  }
};

TEST_P(SklearnModelTest, LabelsAndScoresMatchScikitLearn) {
  const std::vector<Tensor> out = RunModel();
  ASSERT_EQ(out.size(), 2u);
  const Tensor labels = Expected("_labels.npy"), scores = Expected("_scores.npy");
  ASSERT_EQ(out[0].dtype(), DataType::kInt64);
  ASSERT_EQ(out[0].num_elements(), labels.num_elements());
  int64_t mismatches = 0;
  for (int64_t i = 0; i < labels.num_elements(); ++i) {
    mismatches += out[0].data<int64_t>()[i] != labels.data<int64_t>()[i];
  }
  EXPECT_EQ(mismatches, 0) << "of " << labels.num_elements() << " labels";
  ASSERT_EQ(out[1].shape(), scores.shape());
  double worst = 0;
  for (int64_t i = 0; i < scores.num_elements(); ++i) {
    worst = std::max(worst, std::fabs(double{out[1].data<float>()[i]} - scores.data<float>()[i]));
  }
  EXPECT_LE(worst, 1e-5);
}

TEST_P(SklearnModelTest, SingleRowsGiveTheBatchAnswers) {
  const std::vector<Tensor> batch = RunModel(), one = RunModel(1);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[0].data<int64_t>()[0], batch[0].data<int64_t>()[0]);
  for (int64_t k = 0; k < one[1].num_elements(); ++k) {
    EXPECT_EQ(one[1].data<float>()[k], batch[1].data<float>()[k]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, SklearnModelTest,
    testing::Values(Case{"rf_digits", "digits"}, Case{"gb_breast_cancer", "breast_cancer"},
                    Case{"logreg_wine", "wine"}, Case{"linsvc_breast_cancer", "breast_cancer"},
                    Case{"svc_rbf_digits", "digits"}, Case{"svc_poly_iris", "iris"}),
    [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.model); });

TEST(SklearnRegressorTest, GradientBoostingMatchesScikitLearn) {
  auto graph = ImportOnnxFile(kDir + "gb_diabetes.onnx");
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(graph->ml_opset, 1);
  auto model = CompiledModel::Compile(std::move(*graph));
  ASSERT_TRUE(model.ok()) << model.status();
  auto x = ReadNpy(kDir + "diabetes_test_x.npy");
  auto want = ReadNpy(kDir + "gb_diabetes_labels.npy");
  ASSERT_TRUE(x.ok() && want.ok());
  auto out = (*model)->Run({{"input", *x}});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].shape(), (Shape{x->shape()[0], 1}));
  for (int64_t i = 0; i < want->num_elements(); ++i) {
    const float w = want->data<float>()[i];
    EXPECT_NEAR((*out)[0].data<float>()[i], w, 1e-5 * std::fabs(w) + 1e-5) << "row " << i;
  }
}

}  // namespace
}  // namespace qs
