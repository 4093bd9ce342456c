// The transformer fusions (passes/fuse_matmul_bias.cc, fuse_layer_norm.cc,
// fuse_gelu.cc): each pattern as torch exports it is replaced (node types
// after the passes) and the fused graph computes what the unfused one does.
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::MaxAbsDiff;
using test::OnnxBuilder;
using test::RandomTensor;

Tensor Scalar(float v) { return Tensor::FromVector<float>({}, {v}); }

std::vector<std::string> OpTypes(const CompiledModel& m) {
  std::vector<std::string> ops;
  for (const auto& n : m.graph().nodes) ops.push_back(n.op_type);
  return ops;
}

// Runs `b` optimized and unoptimized on x; returns the optimized model.
std::unique_ptr<CompiledModel> ExpectSameAsUnfused(const OnnxBuilder& b, const Tensor& x,
                                                   double tolerance) {
  CompileOptions plain;
  plain.optimize = false;
  auto fused = CompileBuilt(b);
  auto unfused = CompileBuilt(b, plain);
  EXPECT_TRUE(fused.ok()) << fused.status();
  EXPECT_TRUE(unfused.ok()) << unfused.status();
  if (!fused.ok() || !unfused.ok()) return nullptr;
  auto a = (*fused)->Run({{"x", x}});
  auto r = (*unfused)->Run({{"x", x}});
  EXPECT_TRUE(a.ok() && r.ok());
  if (a.ok() && r.ok()) EXPECT_LT(MaxAbsDiff((*a)[0], (*r)[0]), tolerance);
  return std::move(*fused);
}

// x [B, 5, 16] -> torch's decomposed LayerNorm (eps 1e-5) with gamma, beta.
// `extra_reader` adds a second reader of x - mean, which blocks the fusion.
OnnxBuilder LayerNormModel(bool extra_reader) {
  OnnxBuilder b(14);
  b.Input("x", {-1, 5, 16})
      .Initializer("two", Scalar(2.f))
      .Initializer("eps", Scalar(1e-5f))
      .Initializer("gamma", RandomTensor({16}, 2, 0.5f, 1.5f))
      .Initializer("beta", RandomTensor({16}, 3))
      .Node("ReduceMean", {"x"}, {"u"}, {{"axes", std::vector<int64_t>{-1}}})
      .Node("Sub", {"x", "u"}, {"d"})
      .Node("Pow", {"d", "two"}, {"p"})
      .Node("ReduceMean", {"p"}, {"v"}, {{"axes", std::vector<int64_t>{-1}}})
      .Node("Add", {"v", "eps"}, {"e"})
      .Node("Sqrt", {"e"}, {"s"})
      .Node("Div", {"d", "s"}, {"n"})
      .Node("Mul", {"gamma", "n"}, {"m"})
      .Node("Add", {"m", "beta"}, {extra_reader ? "y0" : "y"});
  if (extra_reader) b.Node("Add", {"y0", "d"}, {"y"});
  b.Output("y");
  return b;
}

TEST(TransformerFusionTest, LayerNormBecomesOneNode) {
  auto m = ExpectSameAsUnfused(LayerNormModel(false), RandomTensor({3, 5, 16}, 1, -4.f, 4.f),
                               1e-5);
  ASSERT_NE(m, nullptr);
  EXPECT_THAT(OpTypes(*m), testing::ElementsAre("LayerNormalization"));
  EXPECT_FLOAT_EQ(m->graph().nodes[0].GetFloat("epsilon", 0), 1e-5f);
  // oneDNN 2.6's optimized x64 LayerNorm (JIT statistics/data kernels),
  // not its reference implementation.
  EXPECT_EQ(m->Layers()[0].kernel.impl, "simple_layer_normalization:any");
}

TEST(TransformerFusionTest, LayerNormWithAnotherReaderIsLeftAlone) {
  auto m = ExpectSameAsUnfused(LayerNormModel(true), RandomTensor({2, 5, 16}, 1), 1e-5);
  ASSERT_NE(m, nullptr);
  EXPECT_THAT(OpTypes(*m), testing::Not(testing::Contains("LayerNormalization")));
  EXPECT_EQ(m->graph().nodes.size(), 10u);
}

// x [B, 4, 8] -> Linear(8, 12) as MatMul + Add -> GELU (variant A or B).
OnnxBuilder LinearGeluModel(bool variant_b, bool extra_reader, float half = 0.5f) {
  OnnxBuilder b(14);
  b.Input("x", {-1, 4, 8})
      .Initializer("w", RandomTensor({8, 12}, 4))
      .Initializer("bias", RandomTensor({12}, 5))
      .Initializer("sqrt2", Scalar(1.41421356f))
      .Initializer("one", Scalar(1.f))
      .Initializer("half", Scalar(half))
      .Node("MatMul", {"x", "w"}, {"mm"})
      .Node("Add", {"bias", "mm"}, {"h"})
      .Node("Div", {"h", "sqrt2"}, {"a"})
      .Node("Erf", {"a"}, {"e"})
      .Node("Add", {"e", "one"}, {"p"});
  if (variant_b) {
    b.Node("Mul", {"h", "p"}, {"hp"}).Node("Mul", {"hp", "half"}, {"y0"});
  } else {
    b.Node("Mul", {"h", "half"}, {"hh"}).Node("Mul", {"hh", "p"}, {"y0"});
  }
  if (extra_reader) {
    b.Node("Add", {"y0", "h"}, {"y"});
  } else {
    b.Node("Identity", {"y0"}, {"y"});
  }
  b.Output("y");
  return b;
}

TEST(TransformerFusionTest, LinearAndGeluBecomeOneMatMul) {
  for (bool variant_b : {false, true}) {
    auto m = ExpectSameAsUnfused(LinearGeluModel(variant_b, false),
                                 RandomTensor({2, 4, 8}, 1, -3.f, 3.f), 1e-5);
    ASSERT_NE(m, nullptr);
    EXPECT_THAT(OpTypes(*m), testing::ElementsAre("MatMul", "Identity")) << variant_b;
    const Node& mm = m->graph().nodes[0];
    EXPECT_EQ(mm.inputs.size(), 3u);  // x, w, bias
    ASSERT_EQ(mm.fused_activations.size(), 1u);
    EXPECT_EQ(mm.fused_activations[0].kind, FusedActivation::Kind::kGeluErf);
  }
}

TEST(TransformerFusionTest, GeluWithAnotherReaderOfItsInputIsAStandaloneNode) {
  auto m = ExpectSameAsUnfused(LinearGeluModel(false, true), RandomTensor({2, 4, 8}, 1), 1e-5);
  ASSERT_NE(m, nullptr);
  EXPECT_THAT(OpTypes(*m), testing::ElementsAre("MatMul", "Gelu", "Add"));
}

TEST(TransformerFusionTest, GeluWithWrongConstantIsNotFused) {
  OnnxBuilder b = LinearGeluModel(false, false, /*half=*/0.6f);  // not a GELU
  auto m = ExpectSameAsUnfused(b, RandomTensor({2, 4, 8}, 1), 1e-5);
  ASSERT_NE(m, nullptr);
  EXPECT_THAT(OpTypes(*m), testing::Contains("Erf"));
}

}  // namespace
}  // namespace qs
