#include "engine/compiled_model.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "engine/run_profile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::MaxAbsDiff;
using test::OnnxBuilder;
using test::RandomTensor;
using ::testing::AllOf;
using ::testing::HasSubstr;

// x [N,3,8,8] -> Conv(4, 3x3, pad 1) -> Relu -> Flatten -> Gemm(10, transB) -> y [N,10]
OnnxBuilder ConvGemmModel() {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 8, 8})
      .Initializer("conv.w", RandomTensor({4, 3, 3, 3}, 11))
      .Initializer("conv.b", RandomTensor({4}, 12))
      .Initializer("fc.w", RandomTensor({10, 256}, 13, -0.2f, 0.2f))
      .Initializer("fc.b", RandomTensor({10}, 14))
      .Node("Conv", {"x", "conv.w", "conv.b"}, {"c"},
            {{"pads", std::vector<int64_t>{1, 1, 1, 1}}}, "conv")
      .Node("Relu", {"c"}, {"r"}, {}, "relu")
      .Node("Flatten", {"r"}, {"f"}, {{"axis", 1}}, "flatten")
      .Node("Gemm", {"f", "fc.w", "fc.b"}, {"y"}, {{"transB", 1}}, "fc")
      .Output("y");
  return b;
}

// Rows [begin, begin + count) of a tensor's first dim (a copy).
Tensor Rows(const Tensor& t, int64_t begin, int64_t count) {
  Shape s = t.shape();
  const int64_t row = t.num_elements() / s[0];
  s[0] = count;
  Tensor out(t.dtype(), s);
  std::memcpy(out.data<float>(), t.data<float>() + begin * row,
              count * row * sizeof(float));
  return out;
}

CompileOptions NoOpt() {
  CompileOptions o;
  o.optimize = false;
  return o;
}

absl::Status CompileStatus(const OnnxBuilder& b, const CompileOptions& options = {}) {
  return CompileBuilt(b, options).status();
}

class CompiledModelTest : public ::testing::Test {
 protected:
  // y = x [N,3,4,4] + bias [3,1,1], for the input-validation tests.
  void CompileAddModel() {
    OnnxBuilder b(13);
    b.Input("x", {-1, 3, 4, 4}).Input("bias", {3, 1, 1})
        .Node("Add", {"x", "bias"}, {"y"}, {}, "add").Output("y");
    auto m = CompileBuilt(b);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *std::move(m);
  }
  absl::Status RunStatus(const NamedTensors& inputs) { return model_->Run(inputs).status(); }

  Tensor x_ = RandomTensor({2, 3, 4, 4}, 1);
  Tensor bias_ = RandomTensor({3, 1, 1}, 2);
  std::unique_ptr<CompiledModel> model_;
};

// ---- Inconsistent shapes fail at Compile, naming the node ----

TEST_F(CompiledModelTest, ConvChannelMismatchFailsAtCompile) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 8, 8})
      .Initializer("w", RandomTensor({6, 4, 3, 3}, 1))  // 4 input channels
      .Node("Conv", {"x", "w"}, {"y"}, {}, "conv_bad")
      .Output("y");
  ASSERT_TRUE(test::ImportBuilt(b).ok());  // shapes are a compile-time check
  absl::Status s = CompileStatus(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("Conv node 'conv_bad'"), HasSubstr("[6,4,3,3]")));
  EXPECT_EQ(CompileStatus(b, NoOpt()).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CompiledModelTest, MatMulInnerDimMismatchFailsAtCompile) {
  OnnxBuilder b(13);
  b.Input("a", {2, 3}).Input("b", {4, 5}).Node("MatMul", {"a", "b"}, {"y"}, {}, "mm_bad").Output("y");
  absl::Status s = CompileStatus(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'mm_bad'"), HasSubstr("[2,3]"), HasSubstr("[4,5]")));
}

TEST_F(CompiledModelTest, MatMulWithConstantWeightMismatchFailsAtCompile) {
  OnnxBuilder b(13);
  b.Input("a", {-1, 3})
      .Initializer("w", RandomTensor({4, 5}, 2))
      .Node("MatMul", {"a", "w"}, {"h"}, {}, "mm_const_bad")
      .Node("Relu", {"h"}, {"y"}, {}, "relu")
      .Output("y");
  absl::Status s = CompileStatus(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'mm_const_bad'"));
}

TEST_F(CompiledModelTest, AddNotBroadcastableFailsAtCompile) {
  OnnxBuilder b(13);
  b.Input("a", {2, 3}).Input("b", {4}).Node("Add", {"a", "b"}, {"y"}, {}, "add_bad").Output("y");
  absl::Status s = CompileStatus(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("'add_bad'"), HasSubstr("[2,3]"), HasSubstr("[4]")));
}

TEST_F(CompiledModelTest, GemmBiasNotBroadcastableFailsAtCompile) {
  OnnxBuilder b(13);
  b.Input("a", {-1, 6})
      .Initializer("w", RandomTensor({6, 4}, 3))
      .Initializer("c", RandomTensor({3}, 4))
      .Node("Gemm", {"a", "w", "c"}, {"y"}, {}, "gemm_bad_c")
      .Output("y");
  absl::Status s = CompileStatus(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'gemm_bad_c'"));
}

// ---- Sizes ----

TEST_F(CompiledModelTest, IntermediateOverTensorLimitIsResourceExhausted) {
  // [1,32,128,128] float = 2 MiB, over a 1 MiB limit.
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 128, 128})
      .Initializer("w", RandomTensor({32, 3, 3, 3}, 5))
      .Node("Conv", {"x", "w"}, {"c"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}}, "big_conv")
      .Node("GlobalAveragePool", {"c"}, {"y"}, {}, "gap")
      .Output("y");
  CompileOptions small;
  small.limits.max_tensor_bytes = int64_t{1} << 20;
  absl::Status s = CompileStatus(b, small);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'big_conv'"), HasSubstr("[1,32,128,128]")));
  EXPECT_TRUE(CompileStatus(b).ok());  // fine with the default limits
}

TEST_F(CompiledModelTest, RunOverTotalLimitIsResourceExhausted) {
  // Each value is small (<= 1 MiB), but a batch of 1024 needs ~2 KiB of
  // activations per sample, 2 MiB in all.
  OnnxBuilder b = ConvGemmModel();
  CompileOptions opts;
  opts.limits.max_total_bytes = int64_t{1} << 20;
  auto model = CompileBuilt(b, opts);
  ASSERT_TRUE(model.ok()) << model.status();
  auto out = (*model)->Run({{"x", RandomTensor({1024, 3, 8, 8}, 6)}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(out.status().message(), HasSubstr("activations"));
  EXPECT_TRUE((*model)->Run({{"x", RandomTensor({1, 3, 8, 8}, 6)}}).ok());
}

TEST_F(CompiledModelTest, HugeBatchAtRunIsResourceExhaustedNotACrash) {
  // [N,16] x [16,65536]: batch 16384 makes a 4 GiB output (limit 2 GiB).
  OnnxBuilder b(13);
  b.Input("x", {-1, 16})
      .Initializer("w", RandomTensor({16, 65536}, 7))
      .Node("MatMul", {"x", "w"}, {"y"}, {}, "expand")
      .Output("y");
  auto model = CompileBuilt(b);
  ASSERT_TRUE(model.ok()) << model.status();
  auto out = (*model)->Run({{"x", RandomTensor({16384, 16}, 8)}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(out.status().message(), HasSubstr("'expand'"));
  // The model still serves normal batches.
  auto ok = (*model)->Run({{"x", RandomTensor({2, 16}, 9)}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)[0].shape(), (Shape{2, 65536}));
}

// ---- Run input validation ----

TEST_F(CompiledModelTest, RunAcceptsInputsInAnyOrder) {
  CompileAddModel();
  auto out = model_->Run({{"bias", bias_}, {"x", x_}});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 3, 4, 4}));
  // y[1,2,3,1] = x[1,2,3,1] + bias[2]
  const int64_t i = ((1 * 3 + 2) * 4 + 3) * 4 + 1;
  EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], x_.data<float>()[i] + bias_.data<float>()[2]);
}

TEST_F(CompiledModelTest, RunWrongInputName) {
  CompileAddModel();
  absl::Status s = RunStatus({{"x", x_}, {"biass", bias_}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'biass'"), HasSubstr("'bias'")));
}

TEST_F(CompiledModelTest, RunMissingInput) {
  CompileAddModel();
  absl::Status s = RunStatus({{"x", x_}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'bias'"), HasSubstr("missing")));
}

TEST_F(CompiledModelTest, RunDuplicateInput) {
  CompileAddModel();
  absl::Status s = RunStatus({{"x", x_}, {"bias", bias_}, {"x", x_}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'x'"), HasSubstr("twice")));
}

TEST_F(CompiledModelTest, RunWrongDtype) {
  CompileAddModel();
  Tensor as_int(DataType::kInt64, {2, 3, 4, 4});
  absl::Status s = RunStatus({{"x", as_int}, {"bias", bias_}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'x'"), HasSubstr("int64"), HasSubstr("float32")));
}

TEST_F(CompiledModelTest, RunEmptyTensor) {
  CompileAddModel();
  absl::Status s = RunStatus({{"x", x_}, {"bias", Tensor()}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'bias'"));
}

TEST_F(CompiledModelTest, RunWrongRank) {
  CompileAddModel();
  absl::Status s = RunStatus({{"x", RandomTensor({3, 4, 4}, 3)}, {"bias", bias_}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'x'"), HasSubstr("[3,4,4]")));
}

TEST_F(CompiledModelTest, RunWrongFixedDim) {
  CompileAddModel();
  absl::Status s = RunStatus({{"x", RandomTensor({2, 5, 4, 4}, 3)}, {"bias", bias_}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'x'"), HasSubstr("[2,5,4,4]"), HasSubstr("[?,3,4,4]")));
  s = RunStatus({{"x", x_}, {"bias", RandomTensor({3, 1, 2}, 4)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'bias'"));
}

TEST_F(CompiledModelTest, RunOrderedWrongCount) {
  CompileAddModel();
  auto out = model_->RunOrdered({x_});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("takes 2 inputs, got 1"));
}

// ---- Malformed models fail cleanly (run in a child process: some crash) ----

// Imports, compiles and (if given inputs) runs `b`; prints the first error
// and exits 0, or exits 3 if everything succeeded, 2 on an exception.
[[noreturn]] void ImportCompileRunAndExit(const OnnxBuilder& b, const NamedTensors& inputs) {
  absl::Status s;
  try {
    auto m = CompileBuilt(b);
    s = !m.ok() ? m.status() : inputs.empty() ? absl::OkStatus() : (*m)->Run(inputs).status();
  } catch (const std::exception& e) {
    fprintf(stderr, "exception: %s\n", e.what());
    std::_Exit(2);
  }
  fprintf(stderr, "%s\n", s.ToString().c_str());
  std::_Exit(s.ok() ? 3 : 0);
}

#define EXPECT_CLEAN_ERROR(builder, inputs, regex)                                  \
  do {                                                                              \
    GTEST_FLAG_SET(death_test_style, "threadsafe");                                 \
    EXPECT_EXIT(ImportCompileRunAndExit(builder, inputs), ::testing::ExitedWithCode(0), \
                regex);                                                             \
  } while (0)

TEST_F(CompiledModelTest, MissingOperandIsAnErrorNotACrash) {
  for (const char* op : {"Add", "MatMul", "Gemm", "Conv"}) {
    SCOPED_TRACE(op);
    OnnxBuilder b(13);
    b.Input("x", {1, 3, 4, 4}).Node(op, {"x"}, {"y"}, {}, "one_operand").Output("y");
    EXPECT_CLEAN_ERROR(b, NamedTensors{}, "INVALID_ARGUMENT.*'one_operand'");
  }
}

TEST_F(CompiledModelTest, NodeWithoutOutputsIsAnErrorNotACrash) {
  OnnxBuilder b(13);
  b.Input("x", {2, 3})
      .Node("Relu", {"x"}, {}, {}, "relu_no_out")
      .Node("Sigmoid", {"x"}, {"y"}, {}, "sig")
      .Output("y");
  EXPECT_CLEAN_ERROR(b, (NamedTensors{{"x", RandomTensor({2, 3}, 1)}}),
                     "INVALID_ARGUMENT.*'relu_no_out'");
}

TEST_F(CompiledModelTest, NonFloatOperandsOfMatMulAndGemmAreRejected) {
  const Tensor i64 = Tensor::FromVector<int64_t>({3, 2}, {1, 2, 3, 4, 5, 6});
  const Tensor f64 = Tensor::FromVector<double>({3, 2}, {1, 2, 3, 4, 5, 6});
  for (const char* op : {"MatMul", "Gemm"}) {
    for (const Tensor* w : {&i64, &f64}) {
      SCOPED_TRACE(std::string(op) + " " + DataTypeName(w->dtype()));
      OnnxBuilder b(13);
      b.Input("x", {2, 3}).Initializer("w", *w).Node(op, {"x", "w"}, {"y"}, {}, "typed").Output("y");
      absl::Status s = CompileStatus(b);
      EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;  // as Conv does
      EXPECT_THAT(s.ToString(), HasSubstr("'typed'"));
    }
  }
  OnnxBuilder b(13);
  b.Input("x", {2, 3}, onnx::TensorProto::INT64)
      .Initializer("w", RandomTensor({3, 2}, 1))
      .Node("MatMul", {"x", "w"}, {"y"}, {}, "int_input")
      .Output("y");
  EXPECT_EQ(CompileStatus(b).code(), absl::StatusCode::kUnimplemented);
}

TEST_F(CompiledModelTest, AttributeOfWrongTypeIsRejectedNotIgnored) {
  OnnxBuilder b(13);  // strides must be INTS; an INT is not silently ignored
  b.Input("x", {1, 3, 8, 8})
      .Initializer("w", RandomTensor({4, 3, 3, 3}, 1))
      .Node("Conv", {"x", "w"}, {"y"}, {{"strides", 2}}, "conv_int_strides")
      .Output("y");
  absl::Status s = CompileStatus(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.ToString(), AllOf(HasSubstr("'conv_int_strides'"), HasSubstr("strides")));
}

TEST_F(CompiledModelTest, OutputShapesMarkOnlyBatchDimsDynamic) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4})
      .Initializer("k", RandomTensor({3}, 1))
      .Node("Transpose", {"x"}, {"xt"}, {{"perm", std::vector<int64_t>{1, 0}}}, "t")
      .Node("Relu", {"x"}, {"r"}, {}, "relu")
      .Output("xt").Output("k").Output("r");
  auto m = CompileBuilt(b);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->outputs()[0].shape, (Shape{4, -1}));
  EXPECT_EQ((*m)->outputs()[1].shape, (Shape{3}));
  EXPECT_EQ((*m)->outputs()[2].shape, (Shape{-1, 4}));
}

// ---- Dynamic batch ----

TEST_F(CompiledModelTest, DynamicBatchRowsMatchBatchOne) {
  auto model = CompileBuilt(ConvGemmModel());
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->outputs().size(), 1u);
  EXPECT_EQ((*model)->outputs()[0].shape, (Shape{-1, 10}));
  EXPECT_EQ((*model)->outputs()[0].dtype, DataType::kFloat32);

  const Tensor x7 = RandomTensor({7, 3, 8, 8}, 21);
  auto y7 = (*model)->Run({{"x", x7}});
  ASSERT_TRUE(y7.ok()) << y7.status();
  ASSERT_EQ((*y7)[0].shape(), (Shape{7, 10}));
  auto y3 = (*model)->Run({{"x", Rows(x7, 2, 3)}});
  ASSERT_TRUE(y3.ok()) << y3.status();
  ASSERT_EQ((*y3)[0].shape(), (Shape{3, 10}));
  EXPECT_LE(MaxAbsDiff((*y3)[0], Rows((*y7)[0], 2, 3)), 1e-5);
  for (int64_t i = 0; i < 7; ++i) {
    auto y1 = (*model)->Run({{"x", Rows(x7, i, 1)}});
    ASSERT_TRUE(y1.ok()) << y1.status();
    ASSERT_EQ((*y1)[0].shape(), (Shape{1, 10}));
    EXPECT_LE(MaxAbsDiff((*y1)[0], Rows((*y7)[0], i, 1)), 1e-5) << "row " << i;
  }
  // The outputs are not all zero or constant (the model computes something).
  EXPECT_GT(MaxAbsDiff(Rows((*y7)[0], 0, 1), Rows((*y7)[0], 1, 1)), 1e-3);
}

// ---- Profile ----

TEST(CompiledModelProfileTest, LayersOfTheSameNameAreProfiledApart) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4})
      .Node("Relu", {"x"}, {"r"}, {}, "same")
      .Node("Sigmoid", {"r"}, {"y"}, {}, "same")
      .Output("y");
  auto model = CompileBuilt(b, NoOpt());
  ASSERT_TRUE(model.ok()) << model.status();
  RunProfile profile;
  for (int i = 0; i < 3; ++i) {
    auto y = (*model)->RunOrdered({RandomTensor({2, 4}, 7)}, nullptr, &profile);
    ASSERT_TRUE(y.ok()) << y.status();
  }
  ASSERT_EQ(profile.layers().size(), 2u);
  EXPECT_EQ(profile.layers()[0].op_type, "Relu");
  EXPECT_EQ(profile.layers()[1].op_type, "Sigmoid");
  for (const auto& layer : profile.layers()) {
    EXPECT_EQ(layer.name, "same");
    EXPECT_EQ(layer.calls, 3);
  }
}

// ---- Plan cache ----

TEST(CompiledModelPlanCacheTest, TheLeastRecentlyUsedPlanMakesRoom) {
  CompileOptions options;
  options.max_cached_plans = 3;
  auto model = CompileBuilt(ConvGemmModel(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  const CompiledModel& m = **model;
  auto run = [&](int64_t n) {
    auto y = m.Run({{"x", RandomTensor({n, 3, 8, 8}, 300 + static_cast<uint32_t>(n))}});
    ASSERT_TRUE(y.ok()) << y.status();
    ASSERT_EQ((*y)[0].shape(), (Shape{n, 10}));
  };
  // Compile built batch 1 and 2.
  EXPECT_EQ(m.plan_cache_stats().built, 2u);
  run(1);
  run(3);  // full now: {1, 2, 3}
  EXPECT_EQ(m.plan_cache_stats().built, 3u);
  run(4);  // evicts 2, the least recently used
  run(4);
  run(3);
  run(1);
  EXPECT_EQ(m.plan_cache_stats().built, 4u);  // 4, 3 and 1 stayed cached
  EXPECT_EQ(m.plan_cache_stats().cached, 3u);
  run(2);  // built again, evicting 4
  run(4);  // and 4 again, evicting 3
  EXPECT_EQ(m.plan_cache_stats().built, 6u);
  EXPECT_EQ(m.plan_cache_stats().cached, 3u);
}

// ---- Warm-up ----

TEST(CompiledModelWarmUpTest, BuildsAPlanPerBatchSizeAndRunsAgreeWithAColdModel) {
  auto cold = CompileBuilt(ConvGemmModel());
  auto warm = CompileBuilt(ConvGemmModel());
  ASSERT_TRUE(cold.ok() && warm.ok());
  // Compile built batch 1 and 2 (to find the dynamic output dims): 3..8 are new.
  absl::StatusOr<int> built = (*warm)->WarmUp(8);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(*built, 6);
  built = (*warm)->WarmUp(8);  // all cached already
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(*built, 0);
  built = (*warm)->WarmUp(10);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(*built, 2);
  for (int64_t n : {1, 5, 8, 10, 11}) {
    const Tensor x = RandomTensor({n, 3, 8, 8}, 200 + static_cast<uint32_t>(n));
    auto a = (*cold)->Run({{"x", x}});
    auto b = (*warm)->Run({{"x", x}});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(MaxAbsDiff((*a)[0], (*b)[0]), 0.0) << "batch " << n;
  }
}

TEST(CompiledModelWarmUpTest, FillsAtMostHalfThePlanCache) {
  CompileOptions options;
  options.max_cached_plans = 10;
  auto model = CompileBuilt(ConvGemmModel(), options);
  ASSERT_TRUE(model.ok());
  absl::StatusOr<int> built = (*model)->WarmUp(64);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(*built, 3);  // 1 and 2 from Compile, then 3, 4, 5
}

TEST(CompiledModelWarmUpTest, AnErrorNamesTheBatchSize) {
  CompileOptions options;
  // The largest value, the conv's [N,4,8,8] f32, takes 1 KiB per row: batch
  // 5 is the first too large.
  options.limits.max_tensor_bytes = 4 * 1024 + 1;
  auto model = CompileBuilt(ConvGemmModel(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<int> built = (*model)->WarmUp(8);
  ASSERT_FALSE(built.ok());
  EXPECT_THAT(std::string(built.status().message()), HasSubstr("batch size 5: "));
}

TEST(CompiledModelWarmUpTest, LeavesModelsWithOtherDynamicDimsAlone) {
  OnnxBuilder b(13);
  b.Input("x", {-1, -1}).Node("Relu", {"x"}, {"y"}).Output("y");
  auto model = CompileBuilt(b);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<int> built = (*model)->WarmUp(16);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(*built, 0);
  OnnxBuilder fixed(13);
  fixed.Input("x", {4, 3}).Node("Relu", {"x"}, {"y"}).Output("y");
  model = CompileBuilt(fixed);
  ASSERT_TRUE(model.ok()) << model.status();
  built = (*model)->WarmUp(16);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(*built, 0);
}

// ---- Thread safety ----

void CheckConcurrentRuns(const CompileOptions& options, int threads, int runs) {
  const std::vector<int64_t> batches = {1, 2, 3, 5, 8};
  std::vector<Tensor> inputs, expected;
  {
    auto reference = CompileBuilt(ConvGemmModel(), options);
    ASSERT_TRUE(reference.ok()) << reference.status();
    for (int64_t n : batches) {
      inputs.push_back(RandomTensor({n, 3, 8, 8}, 100 + static_cast<uint32_t>(n)));
      auto y = (*reference)->Run({{"x", inputs.back()}});
      ASSERT_TRUE(y.ok()) << y.status();
      expected.push_back((*y)[0]);
    }
  }
  // A fresh model, so plans for new batch sizes are built concurrently too.
  auto model = CompileBuilt(ConvGemmModel(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  const CompiledModel& m = **model;
  std::atomic<int> errors{0}, mismatches{0}, done{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int r = 0; r < runs; ++r) {
        const size_t k = (t + r) % batches.size();
        auto y = m.Run({{"x", inputs[k]}});
        if (!y.ok() || y->size() != 1) {
          ++errors;
          continue;
        }
        if (!(MaxAbsDiff((*y)[0], expected[k]) <= 1e-6)) ++mismatches;
        ++done;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(done.load(), threads * runs);
}

TEST_F(CompiledModelTest, ConcurrentRunsMatchSingleThreadedReference) {
  CheckConcurrentRuns(CompileOptions{}, 8, 50);
}

TEST_F(CompiledModelTest, ConcurrentRunsWithoutPlanCache) {
  CompileOptions opts;
  opts.max_cached_plans = 1;  // most runs build their own plan and evict another
  CheckConcurrentRuns(opts, 8, 10);
}

TEST_F(CompiledModelTest, ConcurrentRunsUnoptimized) {
  CompileOptions opts;
  opts.optimize = false;
  CheckConcurrentRuns(opts, 4, 20);
}

}  // namespace
}  // namespace qs
