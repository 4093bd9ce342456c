// Gather against a naive reference: every axis, negative axes and indices,
// int32/int64 indices, float32 and int64 data, bounds checks, and constant
// folding (a Gather of constants disappears from the compiled graph).
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::OnnxBuilder;
using test::RandomTensor;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Naive reference: out[o, i..., k] = data[o, idx[i...], k] by coordinates.
template <typename T>
Tensor ReferenceGather(const Tensor& data, const std::vector<int64_t>& idx,
                       const Shape& idx_shape, int64_t axis) {
  const Shape& s = data.shape();
  if (axis < 0) axis += static_cast<int64_t>(s.size());
  Shape out_shape(s.begin(), s.begin() + axis);
  out_shape.insert(out_shape.end(), idx_shape.begin(), idx_shape.end());
  out_shape.insert(out_shape.end(), s.begin() + axis + 1, s.end());
  Tensor out(data.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s[d];
  for (size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
  T* dst = out.data<T>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i : idx) {
      const int64_t row = i < 0 ? i + s[axis] : i;
      for (int64_t k = 0; k < inner; ++k) {
        *dst++ = data.data<T>()[(o * s[axis] + row) * inner + k];
      }
    }
  }
  return out;
}

template <typename I>
Tensor IndexTensor(const Shape& shape, const std::vector<int64_t>& values) {
  std::vector<I> v(values.begin(), values.end());
  return Tensor::FromVector<I>(shape, v);
}

struct Case {
  Shape data;
  int64_t axis;
  Shape idx_shape;
  std::vector<int64_t> idx;
};

class GatherTest : public ::testing::TestWithParam<Case> {};

TEST_P(GatherTest, FloatDataMatchesReferenceWithInt64AndInt32Indices) {
  const Case& p = GetParam();
  const Tensor data = RandomTensor(p.data, 7);
  const Tensor want = ReferenceGather<float>(data, p.idx, p.idx_shape, p.axis);
  for (int onnx_type : {onnx::TensorProto::INT64, onnx::TensorProto::INT32}) {
    OnnxBuilder b(13);
    b.Input("data", p.data).Input("idx", p.idx_shape, onnx_type)
        .Node("Gather", {"data", "idx"}, {"y"}, {{"axis", p.axis}}, "gather")
        .Output("y");
    auto m = CompileBuilt(b);
    ASSERT_TRUE(m.ok()) << m.status();
    Tensor idx = onnx_type == onnx::TensorProto::INT64
                     ? IndexTensor<int64_t>(p.idx_shape, p.idx)
                     : IndexTensor<int32_t>(p.idx_shape, p.idx);
    auto out = (*m)->Run({{"data", data}, {"idx", idx}});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].shape(), want.shape());
    EXPECT_EQ(test::MaxAbsDiff((*out)[0], want), 0.0) << "index type " << onnx_type;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GatherTest,
    ::testing::Values(Case{{5, 3}, 0, {4}, {0, 4, 2, 2}},            // embedding rows
                      Case{{5, 3}, 0, {2, 3}, {1, 0, 4, 3, 3, 2}},    // 2-D indices
                      Case{{2, 5, 3}, 1, {3}, {-1, 0, -5}},           // negative indices
                      Case{{2, 3, 4}, -1, {2}, {3, -4}},              // negative axis
                      Case{{2, 3, 4}, 2, {}, {1}},                    // scalar index drops a dim
                      Case{{4}, 0, {0}, {}}));                        // no indices

TEST(GatherOp, Int64DataIsGatheredByteExact) {
  // Shape tensors are int64: values above 2^53 must survive (no float path).
  const int64_t big = (int64_t{1} << 60) + 3;
  OnnxBuilder b(13);
  b.Input("data", {3}, onnx::TensorProto::INT64).Input("idx", {2}, onnx::TensorProto::INT64)
      .Node("Gather", {"data", "idx"}, {"y"}, {}, "gather").Output("y");
  auto m = CompileBuilt(b);
  ASSERT_TRUE(m.ok()) << m.status();
  auto out = (*m)->Run({{"data", Tensor::FromVector<int64_t>({3}, {7, big, -2})},
                        {"idx", Tensor::FromVector<int64_t>({2}, {1, -1})}});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].dtype(), DataType::kInt64);
  EXPECT_EQ((*out)[0].data<int64_t>()[0], big);
  EXPECT_EQ((*out)[0].data<int64_t>()[1], -2);
}

TEST(GatherOp, OutOfRangeRuntimeIndexIsInvalidArgumentNamingTheNode) {
  OnnxBuilder b(13);
  b.Input("data", {5, 3}).Input("idx", {2}, onnx::TensorProto::INT64)
      .Node("Gather", {"data", "idx"}, {"y"}, {}, "emb_lookup").Output("y");
  auto m = CompileBuilt(b);
  ASSERT_TRUE(m.ok()) << m.status();
  for (int64_t bad : std::vector<int64_t>{5, -6, int64_t{1} << 40}) {
    auto out = (*m)->Run({{"data", RandomTensor({5, 3}, 1)},
                          {"idx", Tensor::FromVector<int64_t>({2}, {0, bad})}});
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(out.status().message(),
                AllOf(HasSubstr("emb_lookup"), HasSubstr("indices[1]"),
                      HasSubstr(std::to_string(bad))));
  }
}

TEST(GatherOp, OutOfRangeConstantIndexFailsAtCompile) {
  OnnxBuilder b(13);
  b.Input("data", {-1, 4})
      .Initializer("idx", Tensor::FromVector<int64_t>({1}, {4}))
      .Node("Gather", {"data", "idx"}, {"y"}, {{"axis", 1}}, "pick").Output("y");
  auto m = CompileBuilt(b);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), AllOf(HasSubstr("pick"), HasSubstr("out of range")));
}

TEST(GatherOp, BadAxisAndIndexTypeAreRejected) {
  {
    OnnxBuilder b(13);
    b.Input("data", {5, 3}).Input("idx", {2}, onnx::TensorProto::INT64)
        .Node("Gather", {"data", "idx"}, {"y"}, {{"axis", 2}}, "g").Output("y");
    auto m = CompileBuilt(b);
    ASSERT_FALSE(m.ok());
    EXPECT_THAT(m.status().message(), AllOf(HasSubstr("'g'"), HasSubstr("axis 2")));
  }
  {
    OnnxBuilder b(13);
    b.Input("data", {5, 3}).Input("idx", {2})
        .Node("Gather", {"data", "idx"}, {"y"}, {}, "g").Output("y");
    auto m = CompileBuilt(b);
    ASSERT_FALSE(m.ok());
    EXPECT_THAT(m.status().message(), HasSubstr("int32 or int64"));
  }
}

TEST(GatherOp, ConstantGatherOnShapeTensorIsFolded) {
  // shape = Gather(const int64 [2, 6, 4], [2, 1]) -> Reshape target [4, 6]
  OnnxBuilder b(13);
  b.Input("x", {2, 12})
      .Initializer("dims", Tensor::FromVector<int64_t>({3}, {2, 6, 4}))
      .Initializer("pick", Tensor::FromVector<int64_t>({2}, {2, 1}))
      .Node("Gather", {"dims", "pick"}, {"target"}, {}, "g")
      .Node("Reshape", {"x", "target"}, {"y"}, {}, "r")
      .Output("y");
  auto m = CompileBuilt(b);
  ASSERT_TRUE(m.ok()) << m.status();
  for (const Node& n : (*m)->graph().nodes) EXPECT_NE(n.op_type, "Gather");
  auto out = (*m)->Run({{"x", RandomTensor({2, 12}, 3)}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{4, 6}));
}

}  // namespace
}  // namespace qs
