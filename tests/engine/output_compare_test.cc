// The per-sample drift measures, against values worked out by hand.
#include "engine/output_compare.h"

#include <gtest/gtest.h>

#include <cmath>

namespace qs {
namespace {

Tensor Rows(const std::vector<std::vector<float>>& rows) {
  Tensor t(DataType::kFloat32, {static_cast<int64_t>(rows.size()),
                                static_cast<int64_t>(rows.front().size())});
  float* p = t.data<float>();
  for (const auto& row : rows) {
    for (float v : row) *p++ = v;
  }
  return t;
}

TEST(OutputCompareTest, IdenticalOutputsHaveNoDrift) {
  const Tensor a = Rows({{1, 2, 3}, {-4, 0, 9}});
  auto c = CompareOutputs(a, a);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);
  for (const SampleComparison& s : *c) {
    EXPECT_EQ(s.top1, s.reference_top1);
    EXPECT_NEAR(s.kl_divergence, 0, 1e-12);
    EXPECT_EQ(s.relative_error, 0);
  }
  EXPECT_EQ((*c)[0].top1, 2);
  EXPECT_EQ((*c)[1].top1, 2);
}

TEST(OutputCompareTest, LogitsGoThroughSoftmax) {
  // Reference logits (0, ln 3) → p = (1/4, 3/4); variant (0, 0) → q = (1/2, 1/2).
  const Tensor ref = Rows({{0.f, std::log(3.f)}});
  const Tensor var = Rows({{0.f, 0.f}});
  auto c = CompareOutputs(ref, var);
  ASSERT_TRUE(c.ok()) << c.status();
  const double expected = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
  EXPECT_NEAR((*c)[0].kl_divergence, expected, 1e-6);
  // ||(0,0) - (0, ln 3)|| / ||(0, ln 3)|| = 1.
  EXPECT_NEAR((*c)[0].relative_error, 1.0, 1e-6);
  EXPECT_EQ((*c)[0].reference_top1, 1);
  EXPECT_EQ((*c)[0].top1, 0);  // ties go to the first class
}

TEST(OutputCompareTest, ProbabilityRowsAreUsedAsTheyAre) {
  const Tensor ref = Rows({{0.25f, 0.75f}});
  const Tensor var = Rows({{0.5f, 0.5f}});
  auto c = CompareOutputs(ref, var);  // auto: the reference row sums to 1
  ASSERT_TRUE(c.ok()) << c.status();
  const double expected = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
  EXPECT_NEAR((*c)[0].kl_divergence, expected, 1e-6);
  // Read as logits instead, the same rows give a different (smaller) value.
  auto as_logits = CompareOutputs(ref, var, ScoreKind::kLogits);
  ASSERT_TRUE(as_logits.ok());
  EXPECT_LT((*as_logits)[0].kl_divergence, expected / 2);
}

TEST(OutputCompareTest, AClassTheVariantRulesOutCostsAFiniteLargeDivergence) {
  auto c = CompareOutputs(Rows({{0.5f, 0.5f}}), Rows({{1.f, 0.f}}), ScoreKind::kProbabilities);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(std::isfinite((*c)[0].kl_divergence));
  EXPECT_GT((*c)[0].kl_divergence, 5);
}

TEST(OutputCompareTest, MismatchedOutputsAreRefused) {
  EXPECT_FALSE(CompareOutputs(Rows({{1, 2}}), Rows({{1, 2, 3}})).ok());
  Tensor ints(DataType::kInt64, {1, 2});
  EXPECT_FALSE(CompareOutputs(ints, ints).ok());
}

TEST(OutputCompareTest, RowArgMaxPerSample) {
  EXPECT_EQ(RowArgMax(Rows({{1, 5, 2}, {7, 0, 0}})), (std::vector<int32_t>{1, 0}));
  EXPECT_TRUE(RowArgMax(Tensor(DataType::kInt64, {2, 2})).empty());
}

}  // namespace
}  // namespace qs
