#include "engine/passes/passes.h"

#include <algorithm>
#include <cmath>

#include "engine/compiled_model.h"
#include "engine/onnx_importer.h"
#include "engine/quant/qdq_export.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::MaxRelDiff;
using test::OnnxBuilder;
using test::RandomTensor;
using Kind = FusedActivation::Kind;
using I64s = std::vector<int64_t>;

int CountOps(const Graph& g, const std::string& op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(),
                                        [&](const Node& n) { return n.op_type == op; }));
}

const Node* FindNode(const Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) {
    if (n.op_type == op) return &n;
  }
  return nullptr;
}

// Compiles `b` with and without the passes, runs both on `inputs` and
// expects equal outputs (1e-4 relative). Returns the optimized model and its
// outputs, or nullptr after recording a failure.
std::unique_ptr<CompiledModel> CompileAndCompare(const OnnxBuilder& b, const NamedTensors& inputs,
                                                 std::vector<Tensor>* outputs = nullptr) {
  CompileOptions plain_opts;
  plain_opts.optimize = false;
  auto opt = CompileBuilt(b);
  auto plain = CompileBuilt(b, plain_opts);
  if (!opt.ok() || !plain.ok()) {
    ADD_FAILURE() << "compile: " << opt.status() << " / " << plain.status();
    return nullptr;
  }
  auto y_opt = (*opt)->Run(inputs);
  auto y_plain = (*plain)->Run(inputs);
  if (!y_opt.ok() || !y_plain.ok()) {
    ADD_FAILURE() << "run: " << y_opt.status() << " / " << y_plain.status();
    return nullptr;
  }
  EXPECT_EQ(y_opt->size(), y_plain->size());
  for (size_t i = 0; i < std::min(y_opt->size(), y_plain->size()); ++i) {
    EXPECT_LE(MaxRelDiff((*y_opt)[i], (*y_plain)[i]), 1e-4) << "output " << i;
  }
  if (outputs != nullptr) *outputs = *y_opt;
  return *std::move(opt);
}

// Adds a BatchNormalization `in` -> `out` with random per-channel params.
void AddBatchNorm(OnnxBuilder& b, const std::string& in, const std::string& out, int64_t c,
                  uint32_t seed) {
  b.Initializer(out + ".scale", RandomTensor({c}, seed, 0.5f, 1.5f))
      .Initializer(out + ".bias", RandomTensor({c}, seed + 1))
      .Initializer(out + ".mean", RandomTensor({c}, seed + 2))
      .Initializer(out + ".var", RandomTensor({c}, seed + 3, 0.1f, 1.f))
      .Node("BatchNormalization",
            {in, out + ".scale", out + ".bias", out + ".mean", out + ".var"}, {out},
            {{"epsilon", 1e-3f}}, "bn_" + out);
}

TEST(PassesTest, ConvBatchNormReluFoldsIntoOneConv) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 8, 8})
      .Initializer("w", RandomTensor({4, 3, 3, 3}, 1))
      .Initializer("b", RandomTensor({4}, 2))
      .Node("Conv", {"x", "w", "b"}, {"c"}, {{"pads", I64s{1, 1, 1, 1}}}, "conv");
  AddBatchNorm(b, "c", "n", 4, 10);
  b.Node("Relu", {"n"}, {"y"}, {}, "relu").Output("y");
  auto m = CompileAndCompare(b, {{"x", RandomTensor({2, 3, 8, 8}, 3)}});
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph();
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(CountOps(g, "BatchNormalization"), 0);
  EXPECT_EQ(CountOps(g, "Relu"), 0);
  const Node& conv = g.nodes[0];
  EXPECT_EQ(conv.op_type, "Conv");
  ASSERT_EQ(conv.fused_activations.size(), 1u);
  EXPECT_EQ(conv.fused_activations[0].kind, Kind::kRelu);
  EXPECT_EQ(conv.outputs[0], "y");
  EXPECT_EQ(m->outputs()[0].name, "y");
  EXPECT_FALSE(g.IsConstant("n.scale"));  // unused BN params are dropped
}

TEST(PassesTest, GemmTransBBatchNormFolds) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 5})
      .Initializer("w", RandomTensor({4, 5}, 1))
      .Initializer("c", RandomTensor({4}, 2))
      .Node("Gemm", {"x", "w", "c"}, {"h"}, {{"transB", 1}}, "fc");
  AddBatchNorm(b, "h", "y", 4, 20);
  b.Output("y");
  auto m = CompileAndCompare(b, {{"x", RandomTensor({3, 5}, 3)}});
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(CountOps(m->graph(), "BatchNormalization"), 0);
  ASSERT_EQ(m->graph().nodes.size(), 1u);
  EXPECT_EQ(m->graph().nodes[0].op_type, "Gemm");
}

TEST(PassesTest, GemmAlphaBetaBatchNormFolds) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 5})
      .Initializer("w", RandomTensor({5, 4}, 4))
      .Initializer("c", RandomTensor({1, 4}, 5))
      .Node("Gemm", {"x", "w", "c"}, {"h"}, {{"alpha", 0.5f}, {"beta", 2.f}}, "fc");
  AddBatchNorm(b, "h", "y", 4, 30);
  b.Output("y");
  auto m = CompileAndCompare(b, {{"x", RandomTensor({3, 5}, 6)}});
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(CountOps(m->graph(), "BatchNormalization"), 0);
}

TEST(PassesTest, GemmAlphaBetaReluFusesAndMatchesNaive) {
  OnnxBuilder b(13);
  const Tensor w = RandomTensor({5, 4}, 7), c = RandomTensor({4}, 8), x = RandomTensor({3, 5}, 9);
  b.Input("x", {-1, 5})
      .Initializer("w", w)
      .Initializer("c", c)
      .Node("Gemm", {"x", "w", "c"}, {"h"}, {{"alpha", 0.5f}, {"beta", 2.f}}, "fc")
      .Node("Relu", {"h"}, {"y"}, {}, "relu")
      .Output("y");
  std::vector<Tensor> y;
  auto m = CompileAndCompare(b, {{"x", x}}, &y);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(CountOps(m->graph(), "Relu"), 0);
  const Node* gemm = FindNode(m->graph(), "Gemm");
  ASSERT_NE(gemm, nullptr);
  ASSERT_EQ(gemm->fused_activations.size(), 1u);
  EXPECT_EQ(gemm->fused_activations[0].kind, Kind::kRelu);
  ASSERT_EQ(y[0].shape(), (Shape{3, 4}));
  int zeros = 0;
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 4; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < 5; ++k) acc += x.data<float>()[i * 5 + k] * w.data<float>()[k * 4 + j];
      const double want = std::max(0.0, 0.5 * acc + 2.0 * c.data<float>()[j]);
      zeros += want == 0.0;
      EXPECT_NEAR(y[0].data<float>()[i * 4 + j], want, 1e-4) << i << "," << j;
    }
  }
  EXPECT_GT(zeros, 0);  // the Relu actually clipped something
}

TEST(PassesTest, MatMulClipFusesWithOpset13ConstantBounds) {
  OnnxBuilder b(13);
  const Tensor x = RandomTensor({2, 3, 6}, 11, -4.f, 4.f), w = RandomTensor({6, 5}, 12, -2.f, 2.f);
  const Tensor s = RandomTensor({5}, 13, 0.5f, 2.f);
  b.Input("x", {-1, 3, 6})
      .Initializer("w", w)
      .Initializer("s", s)
      .Constant("lo", Tensor::FromVector<float>({}, {0.f}))
      .Constant("hi", Tensor::FromVector<float>({}, {6.f}))
      .Node("MatMul", {"x", "w"}, {"m"}, {}, "mm")
      .Node("Clip", {"m", "lo", "hi"}, {"c"}, {}, "clip")
      .Node("Mul", {"c", "s"}, {"y"}, {}, "scale")
      .Output("y");
  std::vector<Tensor> y;
  auto m = CompileAndCompare(b, {{"x", x}}, &y);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(CountOps(m->graph(), "Clip"), 0);
  const Node* mm = FindNode(m->graph(), "MatMul");
  ASSERT_NE(mm, nullptr);
  ASSERT_EQ(mm->fused_activations.size(), 1u);
  EXPECT_EQ(mm->fused_activations[0].kind, Kind::kClip);
  EXPECT_EQ(mm->fused_activations[0].alpha, 0.f);
  EXPECT_EQ(mm->fused_activations[0].beta, 6.f);
  int below = 0, above = 0;
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t j = 0; j < 5; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < 6; ++k) acc += x.data<float>()[r * 6 + k] * w.data<float>()[k * 5 + j];
      below += acc < 0;
      above += acc > 6;
      const double want = std::clamp(acc, 0.0, 6.0) * s.data<float>()[j];
      EXPECT_NEAR(y[0].data<float>()[r * 5 + j], want, 1e-4);
    }
  }
  EXPECT_GT(below, 0);
  EXPECT_GT(above, 0);
}

TEST(PassesTest, LeakyReluFusesIntoConv) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 6, 6})
      .Initializer("w", RandomTensor({5, 3, 3, 3}, 1))
      .Node("Conv", {"x", "w"}, {"c"}, {}, "conv")
      .Node("LeakyRelu", {"c"}, {"y"}, {{"alpha", 0.2f}}, "leaky")
      .Output("y");
  auto m = CompileAndCompare(b, {{"x", RandomTensor({2, 3, 6, 6}, 2)}});
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(CountOps(m->graph(), "LeakyRelu"), 0);
  ASSERT_EQ(m->graph().nodes.size(), 1u);
  const Node& conv = m->graph().nodes[0];
  ASSERT_EQ(conv.fused_activations.size(), 1u);
  EXPECT_EQ(conv.fused_activations[0].kind, Kind::kLeakyRelu);
  EXPECT_FLOAT_EQ(conv.fused_activations[0].alpha, 0.2f);
}

TEST(PassesTest, IdentityAndDropoutInsideGraphAreRemoved) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4})
      .Initializer("ratio", Tensor::FromVector<float>({}, {0.5f}))
      .Node("Relu", {"x"}, {"r"}, {}, "relu")
      .Node("Identity", {"r"}, {"i"}, {}, "ident")
      .Node("Dropout", {"i", "ratio"}, {"d"}, {}, "drop")
      .Node("Sigmoid", {"d"}, {"y"}, {}, "sig")
      .Output("y");
  std::vector<Tensor> y;
  const Tensor x = RandomTensor({3, 4}, 1);
  auto m = CompileAndCompare(b, {{"x", x}}, &y);
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph();
  EXPECT_EQ(CountOps(g, "Identity"), 0);
  EXPECT_EQ(CountOps(g, "Dropout"), 0);
  const Node* sig = FindNode(g, "Sigmoid");
  ASSERT_NE(sig, nullptr);
  EXPECT_EQ(sig->inputs[0], "r");
  for (int64_t i = 0; i < 12; ++i) {
    const double r = std::max(0.f, x.data<float>()[i]);
    EXPECT_NEAR(y[0].data<float>()[i], 1.0 / (1.0 + std::exp(-r)), 1e-5);
  }
}

TEST(PassesTest, IdentityAndDropoutProducingGraphOutputsKeepTheirNames) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4})
      .Node("Relu", {"x"}, {"r"}, {}, "relu")
      .Node("Identity", {"r"}, {"y"}, {}, "ident")
      .Node("Dropout", {"r"}, {"y2"}, {}, "drop")
      .Node("Identity", {"x"}, {"x_copy"}, {}, "ident_in")
      .Output("y")
      .Output("y2")
      .Output("x_copy");
  std::vector<Tensor> y;
  const Tensor x = RandomTensor({3, 4}, 1);
  auto m = CompileAndCompare(b, {{"x", x}}, &y);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->outputs().size(), 3u);
  EXPECT_EQ(m->outputs()[0].name, "y");
  EXPECT_EQ(m->outputs()[1].name, "y2");
  EXPECT_EQ(m->outputs()[2].name, "x_copy");
  for (const char* name : {"y", "y2", "x_copy"}) {
    bool produced = false;
    for (const auto& n : m->graph().nodes) produced |= n.outputs[0] == name;
    EXPECT_TRUE(produced) << name;
  }
  ASSERT_EQ(y.size(), 3u);
  for (int64_t i = 0; i < 12; ++i) {
    const float v = x.data<float>()[i];
    EXPECT_EQ(y[0].data<float>()[i], std::max(0.f, v));
    EXPECT_EQ(y[1].data<float>()[i], std::max(0.f, v));
    EXPECT_EQ(y[2].data<float>()[i], v);
  }
}

TEST(PassesTest, TrainingModeDropoutIsNotSilentlyRemoved) {
  OnnxBuilder b(13);  // the unoptimized compiler rejects it; the passes must not hide that
  b.Input("x", {2, 3})
      .Initializer("ratio", Tensor::FromVector<float>({}, {0.5f}))
      .Initializer("train", Tensor::FromVector<bool>({}, {true}))
      .Node("Dropout", {"x", "ratio", "train"}, {"d"}, {}, "drop_train")
      .Node("Relu", {"d"}, {"y"}, {}, "relu")
      .Output("y");
  for (bool optimize : {false, true}) {
    CompileOptions opts;
    opts.optimize = optimize;
    absl::Status s = CompileBuilt(b, opts).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << "optimize=" << optimize << ": " << s;
    EXPECT_THAT(s.ToString(), ::testing::HasSubstr("'drop_train'")) << "optimize=" << optimize;
  }
}

TEST(PassesTest, TransposeOfInitializerIsFolded) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4})
      .Initializer("wt", RandomTensor({5, 4}, 3))
      .Node("Transpose", {"wt"}, {"w"}, {{"perm", I64s{1, 0}}}, "tr")
      .Node("MatMul", {"x", "w"}, {"y"}, {}, "mm")
      .Output("y");
  auto m = CompileAndCompare(b, {{"x", RandomTensor({2, 4}, 4)}});
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph();
  EXPECT_EQ(CountOps(g, "Transpose"), 0);
  ASSERT_EQ(g.nodes.size(), 1u);
  const Tensor* w = g.FindInitializer(g.nodes[0].inputs[1]);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape(), (Shape{4, 5}));
  EXPECT_FALSE(g.IsConstant("wt"));
}

TEST(PassesTest, ReluOnSharedOutputIsNotFused) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 6, 6})
      .Initializer("w", RandomTensor({4, 3, 3, 3}, 5))
      .Initializer("b", RandomTensor({4}, 6))
      .Node("Conv", {"x", "w", "b"}, {"c"}, {}, "conv")
      .Node("Relu", {"c"}, {"r"}, {}, "relu")
      .Node("Sigmoid", {"c"}, {"s"}, {}, "sig")
      .Output("r")
      .Output("s");
  std::vector<Tensor> y;
  auto m = CompileAndCompare(b, {{"x", RandomTensor({2, 3, 6, 6}, 7)}}, &y);
  ASSERT_NE(m, nullptr);
  const Node* conv = FindNode(m->graph(), "Conv");
  ASSERT_NE(conv, nullptr);
  EXPECT_TRUE(conv->fused_activations.empty());
  EXPECT_EQ(CountOps(m->graph(), "Relu"), 1);
  // s = sigmoid(c) must see the negative pre-activations; r = max(c, 0).
  int negative = 0;
  for (int64_t i = 0; i < y[1].num_elements(); ++i) {
    const double s = y[1].data<float>()[i];
    const double c = std::log(s / (1 - s));
    negative += c < 0;
    EXPECT_NEAR(y[0].data<float>()[i], std::max(0.0, c), 1e-3) << i;
  }
  EXPECT_GT(negative, 0);
}

TEST(PassesTest, ProducerThatIsAGraphOutputIsNotFusedOrFolded) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 6, 6})
      .Initializer("w", RandomTensor({4, 3, 3, 3}, 8))
      .Node("Conv", {"x", "w"}, {"c"}, {}, "conv")
      .Node("Relu", {"c"}, {"r"}, {}, "relu");
  AddBatchNorm(b, "c", "n", 4, 40);
  b.Output("c").Output("r").Output("n");
  std::vector<Tensor> y;
  auto m = CompileAndCompare(b, {{"x", RandomTensor({1, 3, 6, 6}, 9)}}, &y);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(FindNode(m->graph(), "Conv")->fused_activations.empty());
  EXPECT_EQ(CountOps(m->graph(), "Relu"), 1);
  EXPECT_EQ(CountOps(m->graph(), "BatchNormalization"), 1);
  EXPECT_LT(*std::min_element(y[0].values<float>().begin(), y[0].values<float>().end()), 0.f);
}

// ---- Reference checks against naive implementations ----

// Direct NCHW convolution with groups, strides, dilations and pads
// {top, left, bottom, right}.
Tensor NaiveConv(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t group,
                 const I64s& strides, const I64s& dil, const I64s& pads) {
  const int64_t n = x.shape()[0], ci = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
  const int64_t co = w.shape()[0], cig = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3];
  const int64_t oh = (h + pads[0] + pads[2] - ((kh - 1) * dil[0] + 1)) / strides[0] + 1;
  const int64_t ow = (wd + pads[1] + pads[3] - ((kw - 1) * dil[1] + 1)) / strides[1] + 1;
  Tensor y(DataType::kFloat32, {n, co, oh, ow});
  const float *X = x.data<float>(), *W = w.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < co; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = bias.data<float>()[o];
          const int64_t g = o / (co / group);
          for (int64_t c = 0; c < cig; ++c)
            for (int64_t p = 0; p < kh; ++p)
              for (int64_t q = 0; q < kw; ++q) {
                const int64_t ih = i * strides[0] - pads[0] + p * dil[0];
                const int64_t iw = j * strides[1] - pads[1] + q * dil[1];
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                acc += X[((b * ci + g * cig + c) * h + ih) * wd + iw] *
                       W[((o * cig + c) * kh + p) * kw + q];
              }
          y.data<float>()[((b * co + o) * oh + i) * ow + j] = static_cast<float>(acc);
        }
  return y;
}

TEST(PassesTest, GroupedDilatedStridedConvMatchesNaive) {
  struct Case { int64_t ci, co, group; };
  for (Case k : {Case{4, 4, 4}, Case{4, 6, 2}, Case{3, 5, 1}}) {
    SCOPED_TRACE(::testing::Message() << "ci=" << k.ci << " co=" << k.co << " group=" << k.group);
    const Tensor x = RandomTensor({2, k.ci, 9, 10}, 1), w = RandomTensor({k.co, k.ci / k.group, 3, 3}, 2);
    const Tensor bias = RandomTensor({k.co}, 3);
    const I64s strides = {2, 2}, dil = {2, 2}, pads = {1, 2, 0, 1};
    OnnxBuilder b(13);
    b.Input("x", {-1, k.ci, 9, 10}).Initializer("w", w).Initializer("b", bias)
        .Node("Conv", {"x", "w", "b"}, {"y"},
              {{"group", k.group}, {"strides", strides}, {"dilations", dil}, {"pads", pads}},
              "conv")
        .Output("y");
    std::vector<Tensor> y;
    ASSERT_NE(CompileAndCompare(b, {{"x", x}}, &y), nullptr);
    const Tensor want = NaiveConv(x, w, bias, k.group, strides, dil, pads);
    ASSERT_EQ(want.shape(), (Shape{2, k.co, 3, 5}));
    EXPECT_LE(MaxRelDiff(y[0], want), 1e-4);
  }
}

TEST(PassesTest, GemmTransposedBothWithColumnBroadcastMatchesNaive) {
  const int64_t M = 3, K = 5, N = 4;
  const float alpha = 0.7f, beta = -1.5f;
  const Tensor a = RandomTensor({K, M}, 1), bt = RandomTensor({N, K}, 2), c = RandomTensor({M, 1}, 3);
  Tensor want(DataType::kFloat32, {M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += a.data<float>()[k * M + i] * bt.data<float>()[j * K + k];
      want.data<float>()[i * N + j] = static_cast<float>(alpha * acc + beta * c.data<float>()[i]);
    }
  for (bool b_const : {true, false}) {
    SCOPED_TRACE(b_const ? "constant B" : "runtime B");
    OnnxBuilder b(13);
    b.Input("a", {K, M}).Initializer("c", c);
    NamedTensors inputs = {{"a", a}};
    if (b_const) {
      b.Initializer("b", bt);
    } else {
      b.Input("b", {N, K});
      inputs.emplace_back("b", bt);
    }
    b.Node("Gemm", {"a", "b", "c"}, {"y"},
           {{"transA", 1}, {"transB", 1}, {"alpha", alpha}, {"beta", beta}}, "gemm")
        .Output("y");
    std::vector<Tensor> y;
    ASSERT_NE(CompileAndCompare(b, inputs, &y), nullptr);
    EXPECT_LE(MaxRelDiff(y[0], want), 1e-5);
  }
}


// Attention's shape: heads split by Transposes before Q·Kᵀ, scaled by
// 1/√d, merged by a Transpose after — all read and written as strided views
// of one MatMul, equal to the unfolded graph, and exported as standard ONNX
// that computes the same again.
TEST(PassesTest, TransposesAndScaleFoldIntoARuntimeMatMul) {
  OnnxBuilder b(13);
  b.Input("q", {-1, 5, 3, 4})
      .Input("k", {-1, 6, 3, 4})
      .Initializer("sqrt_d", Tensor::FromVector<float>({}, {2.f}))
      .Node("Transpose", {"q"}, {"qh"}, {{"perm", I64s{0, 2, 1, 3}}}, "tq")
      .Node("Transpose", {"k"}, {"kt"}, {{"perm", I64s{0, 2, 3, 1}}}, "tk")
      .Node("MatMul", {"qh", "kt"}, {"s"}, {}, "qk")
      .Node("Div", {"s", "sqrt_d"}, {"sd"}, {}, "scale")
      .Node("Transpose", {"sd"}, {"y"}, {{"perm", I64s{0, 2, 1, 3}}}, "ty")
      .Output("y", {-1, 5, 3, 6});
  const NamedTensors inputs = {{"q", RandomTensor({2, 5, 3, 4}, 11)},
                               {"k", RandomTensor({2, 6, 3, 4}, 12)}};
  std::vector<Tensor> y;
  auto m = CompileAndCompare(b, inputs, &y);
  ASSERT_NE(m, nullptr);
  const Graph& g = m->graph();
  ASSERT_EQ(g.nodes.size(), 1u);
  const Node& mm = g.nodes[0];
  EXPECT_EQ(mm.GetInts("a_perm"), (I64s{0, 2, 1, 3}));
  EXPECT_EQ(mm.GetInts("b_perm"), (I64s{0, 2, 3, 1}));
  EXPECT_EQ(mm.GetInts("y_perm"), (I64s{0, 2, 1, 3}));
  EXPECT_FLOAT_EQ(mm.GetFloat("alpha", 1.f), 0.5f);
  ASSERT_EQ(y[0].shape(), (Shape{2, 5, 3, 6}));
  // One element by hand: y[n, i, h, j] = Σ_d q[n, i, h, d] · k[n, j, h, d] / 2.
  const float* q = inputs[0].second.data<float>();
  const float* k = inputs[1].second.data<float>();
  const int64_t n = 1, i = 4, h = 2, j = 5;
  double want = 0;
  for (int64_t d = 0; d < 4; ++d) {
    want += q[((n * 5 + i) * 3 + h) * 4 + d] * k[((n * 6 + j) * 3 + h) * 4 + d];
  }
  EXPECT_NEAR(y[0].data<float>()[((n * 5 + i) * 3 + h) * 6 + j], want / 2, 1e-5);

  auto bytes = quant::ExportQdqOnnx(g, "views");
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto exported = ImportOnnxBytes(*bytes, "views");
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(CountOps(*exported, "Transpose"), 3);
  CompileOptions plain;
  plain.optimize = false;
  auto again = CompiledModel::Compile(*std::move(exported), plain);
  ASSERT_TRUE(again.ok()) << again.status();
  auto y2 = (*again)->Run(inputs);
  ASSERT_TRUE(y2.ok()) << y2.status();
  EXPECT_LE(MaxRelDiff((*y2)[0], y[0]), 1e-5);
}

// A Transpose something else also reads stays, and so does a MatMul whose
// operand is a weight (it runs as a packed inner product instead).
TEST(PassesTest, SharedTransposesAndWeightMatMulsAreNotFolded) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 4})
      .Input("z", {-1, 3, 4})
      .Initializer("w", RandomTensor({3, 5}, 13))
      .Initializer("two", Tensor::FromVector<float>({}, {2.f}))
      .Node("Transpose", {"x"}, {"xt"}, {{"perm", I64s{0, 2, 1}}}, "tx")
      .Node("MatMul", {"xt", "z"}, {"p"}, {}, "mm")
      .Node("Mul", {"two", "p"}, {"y"}, {}, "scale")
      .Node("MatMul", {"xt", "w"}, {"d"}, {}, "dense")
      .Output("y")
      .Output("d");
  auto m = CompileAndCompare(b, {{"x", RandomTensor({2, 3, 4}, 14)},
                                 {"z", RandomTensor({2, 3, 4}, 15)}});
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(CountOps(m->graph(), "Transpose"), 1);
  EXPECT_EQ(CountOps(m->graph(), "Mul"), 0);  // 2 · (A·B) on either side folds
  for (const auto& n : m->graph().nodes) {
    EXPECT_FALSE(n.HasAttr("a_perm")) << n.name;
  }
}

// ResNet's residual Add + Relu runs as one oneDNN binary with a post-op; an
// Add of integers (shape arithmetic) applies a fused Relu itself.
TEST(PassesTest, ReluFusesIntoFloatAndIntegerAdds) {
  OnnxBuilder b(14);
  b.Input("x", {-1, 4})
      .Input("z", {-1, 4})
      .Input("i", {3}, onnx::TensorProto::INT64)
      .Initializer("j", Tensor::FromVector<int64_t>({3}, {-5, 2, -1}))
      .Node("Add", {"x", "z"}, {"a"}, {}, "add")
      .Node("Relu", {"a"}, {"y"}, {}, "relu")
      .Node("Add", {"i", "j"}, {"ia"}, {}, "int_add")
      .Node("Relu", {"ia"}, {"iy"}, {}, "int_relu")
      .Output("y", {-1, 4})
      .Output("iy", {3}, onnx::TensorProto::INT64);
  auto m = CompileBuilt(b);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(CountOps((*m)->graph(), "Relu"), 0);
  const Tensor x = RandomTensor({2, 4}, 16), z = RandomTensor({2, 4}, 17);
  auto y = (*m)->Run({{"x", x}, {"z", z}, {"i", Tensor::FromVector<int64_t>({3}, {1, 1, 4})}});
  ASSERT_TRUE(y.ok()) << y.status();
  int negative_sums = 0;
  for (int64_t k = 0; k < 8; ++k) {
    const float sum = x.data<float>()[k] + z.data<float>()[k];
    negative_sums += sum < 0;
    EXPECT_FLOAT_EQ((*y)[0].data<float>()[k], std::max(0.f, sum)) << k;
  }
  EXPECT_GT(negative_sums, 0);
  EXPECT_EQ((*y)[1].data<int64_t>()[0], 0);
  EXPECT_EQ((*y)[1].data<int64_t>()[1], 3);
  EXPECT_EQ((*y)[1].data<int64_t>()[2], 3);
}

// A quantized variant compiles the already optimized graph, so the passes
// run twice: a second Transpose on an operand, or after the product, then
// composes with the view the first run made.
TEST(PassesTest, FoldedViewsComposeWhenThePassesRunAgain) {
  OnnxBuilder b(13);
  b.Input("q", {-1, 5, 3, 4})
      .Input("k", {-1, 6, 3, 4})
      .Initializer("half", Tensor::FromVector<float>({}, {0.5f}))
      .Node("Transpose", {"q"}, {"qh"}, {{"perm", I64s{0, 2, 1, 3}}}, "tq")
      .Node("Transpose", {"k"}, {"kh"}, {{"perm", I64s{0, 2, 1, 3}}}, "tk1")
      .Node("Transpose", {"kh"}, {"kt"}, {{"perm", I64s{0, 1, 3, 2}}}, "tk2")
      .Node("MatMul", {"qh", "kt"}, {"s"}, {}, "qk")
      .Node("Transpose", {"s"}, {"st"}, {{"perm", I64s{0, 2, 1, 3}}}, "ty1")
      .Node("Mul", {"st", "half"}, {"sm"}, {}, "scale")
      .Node("Transpose", {"sm"}, {"y"}, {{"perm", I64s{1, 0, 2, 3}}}, "ty2")
      .Output("y", {5, -1, 3, 6});
  const NamedTensors inputs = {{"q", RandomTensor({2, 5, 3, 4}, 21)},
                               {"k", RandomTensor({2, 6, 3, 4}, 22)}};
  std::vector<Tensor> once;
  auto m = CompileAndCompare(b, inputs, &once);
  ASSERT_NE(m, nullptr);
  auto twice = CompiledModel::Compile(m->graph());
  ASSERT_TRUE(twice.ok()) << twice.status();
  EXPECT_EQ(CountOps((*twice)->graph(), "Transpose"), 0);
  EXPECT_EQ(CountOps((*twice)->graph(), "Mul"), 0);
  auto y = (*twice)->Run(inputs);
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ((*y)[0].shape(), (Shape{5, 2, 3, 6}));
  EXPECT_LE(MaxRelDiff((*y)[0], once[0]), 1e-5);
}

// A scale of shape [1] would turn the 0-D product of two vectors into a
// 1-D value: only 0-D constants fold.
TEST(PassesTest, OnlyARank0ScaleFoldsIntoAMatMul) {
  OnnxBuilder b(13);
  b.Input("u", {4})
      .Input("v", {4})
      .Initializer("two", Tensor::FromVector<float>({1}, {2.f}))
      .Node("MatMul", {"u", "v"}, {"d"}, {}, "dot")
      .Node("Mul", {"d", "two"}, {"y"}, {}, "scale")
      .Output("y", {1});
  auto m = CompileAndCompare(b, {{"u", RandomTensor({4}, 23)}, {"v", RandomTensor({4}, 24)}});
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(CountOps(m->graph(), "Mul"), 1);
}

}  // namespace
}  // namespace qs
