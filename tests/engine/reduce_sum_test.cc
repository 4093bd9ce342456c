// ReduceSum against a naive coordinate-wise reference: axes as input (opset
// 13) and attribute (opset 11), negative axes, keepdims, all-axes default,
// noop_with_empty_axes, and bad axes.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::OnnxBuilder;
using test::RandomTensor;
using ::testing::HasSubstr;

// Sums x [A,B,C] over the dims flagged in `r`, keeping them as 1.
Tensor Reference(const Tensor& x, const std::vector<bool>& r) {
  const Shape& s = x.shape();
  Shape keep_shape = {r[0] ? 1 : s[0], r[1] ? 1 : s[1], r[2] ? 1 : s[2]};
  Tensor out(DataType::kFloat32, keep_shape);
  for (int64_t a = 0; a < s[0]; ++a)
    for (int64_t b = 0; b < s[1]; ++b)
      for (int64_t c = 0; c < s[2]; ++c) {
        const int64_t oa = r[0] ? 0 : a, ob = r[1] ? 0 : b, oc = r[2] ? 0 : c;
        out.data<float>()[(oa * keep_shape[1] + ob) * keep_shape[2] + oc] +=
            x.data<float>()[(a * s[1] + b) * s[2] + c];
      }
  return out;
}

struct Case {
  std::vector<int64_t> axes;
  std::vector<bool> reduced;
};

class ReduceSumTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReduceSumTest, MatchesReferenceForBothOpsetsAndKeepdims) {
  const Case& p = GetParam();
  const Tensor x = RandomTensor({3, 4, 5}, 5);
  const Tensor kept = Reference(x, p.reduced);
  for (int64_t opset : {11, 13}) {
    for (int keepdims : {0, 1}) {
      OnnxBuilder b(opset);
      b.Input("x", {3, 4, 5});
      std::vector<std::string> inputs = {"x"};
      test::OnnxAttrs attrs = {{"keepdims", keepdims}};
      if (opset >= 13 && !p.axes.empty()) {
        b.Initializer("axes", Tensor::FromVector<int64_t>({(int64_t)p.axes.size()}, p.axes));
        inputs.push_back("axes");
      } else if (!p.axes.empty()) {
        attrs.push_back({"axes", p.axes});
      }
      b.Node("ReduceSum", inputs, {"y"}, attrs, "sum").Output("y");
      auto m = CompileBuilt(b);
      ASSERT_TRUE(m.ok()) << m.status();
      auto out = (*m)->Run({{"x", x}});
      ASSERT_TRUE(out.ok()) << out.status();
      Shape want_shape;
      for (int d = 0; d < 3; ++d) {
        if (!p.reduced[d]) want_shape.push_back(x.shape()[d]);
        else if (keepdims) want_shape.push_back(1);
      }
      EXPECT_EQ((*out)[0].shape(), want_shape) << "opset " << opset;
      // Float sums in a different order: a few ulps of the sum of |x| (≤ 60 terms of ≤ 1).
      EXPECT_LT(test::MaxAbsDiff((*out)[0].Reshaped(kept.shape()), kept), 1e-5)
          << "opset " << opset << " keepdims " << keepdims;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Axes, ReduceSumTest,
                         ::testing::Values(Case{{1}, {false, true, false}},
                                           Case{{-1}, {false, false, true}},
                                           Case{{0, 2}, {true, false, true}},
                                           Case{{}, {true, true, true}}));

TEST(ReduceSumOp, NoopWithEmptyAxesCopiesTheInput) {
  OnnxBuilder b(13);
  b.Input("x", {2, 3})
      .Node("ReduceSum", {"x"}, {"y"}, {{"noop_with_empty_axes", 1}}, "sum").Output("y");
  auto m = CompileBuilt(b);
  ASSERT_TRUE(m.ok()) << m.status();
  const Tensor x = RandomTensor({2, 3}, 9);
  auto out = (*m)->Run({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(test::MaxAbsDiff((*out)[0], x), 0.0);
}

TEST(ReduceSumOp, OutOfRangeOrRepeatedAxisIsRejectedNamingTheNode) {
  for (std::vector<int64_t> axes : {std::vector<int64_t>{2}, std::vector<int64_t>{1, -1}}) {
    OnnxBuilder b(13);
    b.Input("x", {2, 3})
        .Initializer("axes", Tensor::FromVector<int64_t>({(int64_t)axes.size()}, axes))
        .Node("ReduceSum", {"x", "axes"}, {"y"}, {}, "pool").Output("y");
    auto m = CompileBuilt(b);
    ASSERT_FALSE(m.ok());
    EXPECT_THAT(m.status().message(), HasSubstr("'pool'"));
  }
}

}  // namespace
}  // namespace qs
