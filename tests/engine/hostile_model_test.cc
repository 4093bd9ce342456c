// Regression tests for models found by fuzzing (tests/fuzz/fuzz_onnx_import,
// docs/RELIABILITY.md): each was a crash or undefined behaviour at import or
// compile time, and must be a clean error naming the problem.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/compiled_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::ImportBuilt;
using test::OnnxBuilder;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Was: signed overflow multiplying the target dims in Reshape's shape
// inference (UBSan), with whatever wrapped value the product then had.
TEST(HostileModelTest, ReshapeTargetDimsThatOverflowAreInvalid) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4})
      .Initializer("shape", Tensor::FromVector<int64_t>(
                                {3}, {int64_t{1} << 40, int64_t{1} << 40, 4}))
      .Node("Reshape", {"x", "shape"}, {"y"}, {}, "bad_reshape")
      .Output("y");
  auto model = CompileBuilt(b);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), AllOf(HasSubstr("'bad_reshape'"), HasSubstr("overflow")));
}

// Was: a float shape tensor with a value beyond int64 (1e30) converted with
// a plain cast in Tensor::ScalarAsInt64 (UBSan float-cast-overflow, found by
// the CI fuzz run of 2026-11-26). The spec wants int64 shapes; a float one is
// read saturating and then refused like any other absurd dim.
TEST(HostileModelTest, FloatShapeValuesBeyondInt64AreInvalid) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4})
      .Initializer("shape", Tensor::FromVector<float>({2}, {1e30f, 4.0f}))
      .Node("Reshape", {"x", "shape"}, {"y"}, {}, "float_reshape")
      .Output("y");
  auto model = CompileBuilt(b);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("'float_reshape'"));
}

// Was: a BOOL initializer whose raw_data byte is 0x80 copied as is, then
// loaded as a C++ bool (UBSan: "load of value 128", found by fuzzing
// 2026-11-26; corpus regress_bool_raw_byte_128.onnx). Any nonzero byte is
// true on the wire, and is imported as 1.
TEST(HostileModelTest, BoolRawBytesAreNormalizedToZeroOrOne) {
  onnx::TensorProto flags;
  flags.set_data_type(onnx::TensorProto::BOOL);
  flags.add_dims(3);
  flags.set_raw_data(std::string("\x80\x00\x02", 3));
  OnnxBuilder b(13);
  b.Input("x", {3}).Initializer("flags", flags).Node("Identity", {"x"}, {"y"}).Output("y");
  auto graph = ImportBuilt(b);
  ASSERT_TRUE(graph.ok()) << graph.status();
  const Tensor* t = graph->FindInitializer("flags");
  ASSERT_NE(t, nullptr);
  const auto* bytes = static_cast<const unsigned char*>(t->raw_data());
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[1], 0);
  EXPECT_EQ(bytes[2], 1);
}

TEST(HostileModelTest, SaturatingToInt64CoversTheWholeDoubleRange) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(SaturatingToInt64(1e30), kMax);
  EXPECT_EQ(SaturatingToInt64(-1e30), kMin);
  EXPECT_EQ(SaturatingToInt64(std::numeric_limits<double>::infinity()), kMax);
  EXPECT_EQ(SaturatingToInt64(-std::numeric_limits<double>::infinity()), kMin);
  EXPECT_EQ(SaturatingToInt64(std::numeric_limits<double>::quiet_NaN()), 0);
  EXPECT_EQ(SaturatingToInt64(9223372036854775808.0), kMax);  // 2^63
  EXPECT_EQ(SaturatingToInt64(-9223372036854775808.0), kMin);
  EXPECT_EQ(SaturatingToInt64(-2.9), -2);  // truncates toward zero like a cast
  EXPECT_EQ(SaturatingToInt64(7.9), 7);
}

// Fixed input dims are the model's to choose; they are now bounded like any
// other value before shape inference multiplies them.
TEST(HostileModelTest, HugeFixedInputDimsAreResourceExhausted) {
  for (Shape dims : {Shape{int64_t{1} << 40, int64_t{1} << 40},
                     Shape{0, int64_t{1} << 40, int64_t{1} << 40}}) {
    OnnxBuilder b(13);
    b.Input("x", dims).Node("Flatten", {"x"}, {"y"}, {{"axis", 1}}).Output("y");
    auto model = CompileBuilt(b);
    ASSERT_FALSE(model.ok()) << ShapeToString(dims);
    EXPECT_EQ(model.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(model.status().message(), AllOf(HasSubstr("input 'x'"), HasSubstr("limit")));
  }
}

// An empty initializer may not carry dims whose product (zeros aside)
// overflows: shape inference multiplies them.
TEST(HostileModelTest, EmptyInitializerWithHugeDimsIsRefused) {
  onnx::TensorProto proto;
  proto.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t{0}, int64_t{1} << 40, int64_t{1} << 40}) proto.add_dims(d);
  OnnxBuilder b(13);
  b.Input("x", {1, 4}).Initializer("w", proto).Node("Relu", {"x"}, {"y"}).Output("y");
  auto graph = ImportBuilt(b);
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(graph.status().message(), HasSubstr("'w'"));
}

// Was: FoldBatchNorm read the producer's weights without checking them: a
// scalar weight (shape()[0] of a rank-0 tensor, UBSan), 0 channels (integer
// division by zero), or no input 1 (the importer's schema check refuses
// that first). The malformed Conv is now left alone, and shape inference or
// oneDNN reject it.
TEST(HostileModelTest, BatchNormAfterMalformedConvIsAnErrorNotACrash) {
  struct Case {
    const char* what;
    std::vector<std::string> conv_inputs;
    Tensor weight;
    int64_t channels;
  };
  const std::vector<Case> cases = {
      {"scalar weight", {"x", "w"}, Tensor::FromVector<float>({}, {0.5f}), 2},
      {"no weight input", {"x"}, Tensor::FromVector<float>({}, {0.5f}), 2},
      {"zero channels", {"x", "w"}, Tensor(DataType::kFloat32, {0, 2, 1, 1}), 0},
  };
  for (const Case& c : cases) {
    OnnxBuilder b(13);
    b.Input("x", {1, 2, 4, 4}).Initializer("w", c.weight);
    for (const char* name : {"scale", "bias", "mean", "var"}) {
      b.Initializer(name, Tensor(DataType::kFloat32, {c.channels}));
    }
    b.Node("Conv", c.conv_inputs, {"c"}, {}, "conv")
        .Node("BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"y"}, {}, "bn")
        .Output("y");
    auto model = CompileBuilt(b);
    ASSERT_FALSE(model.ok()) << c.what;
    EXPECT_NE(model.status().code(), absl::StatusCode::kInternal) << c.what;
    EXPECT_THAT(model.status().message(), HasSubstr("conv")) << c.what;
  }
}

}  // namespace
}  // namespace qs
