// Shape subgraphs evaluated when a plan is built (plan.cc): a model that
// reshapes by a shape computed from its input (as torch exports view(b, -1,
// h, d)) runs at any batch size, the shape nodes are not steps of the plan,
// and integer shape arithmetic (Mul, Equal, Where, ConstantOfShape, Expand)
// gives the values ONNX defines.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::OnnxBuilder;
using test::RandomTensor;

Tensor Int64s(std::vector<int64_t> v) {
  return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

// x [B, 6] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [2, 3])) -> [B, 2, 3],
// then Transpose to [B, 3, 2].
OnnxBuilder SplitHeadsModel() {
  OnnxBuilder b(13);
  b.Input("x", {-1, 6})
      .Constant("zero", Tensor::FromVector<int64_t>({}, {0}))
      .Constant("axes0", Int64s({0}))
      .Constant("tail", Int64s({2, 3}))
      .Node("Shape", {"x"}, {"shape"})
      .Node("Gather", {"shape", "zero"}, {"batch"}, {{"axis", 0}})
      .Node("Unsqueeze", {"batch", "axes0"}, {"batch1"})
      .Node("Concat", {"batch1", "tail"}, {"target"}, {{"axis", 0}})
      .Node("Reshape", {"x", "target"}, {"r"})
      .Node("Transpose", {"r"}, {"y"}, {{"perm", std::vector<int64_t>{0, 2, 1}}})
      .Output("y");
  return b;
}

TEST(PlanFoldingTest, ReshapeByComputedShapeRunsAtEveryBatchSize) {
  auto model = CompileBuilt(SplitHeadsModel());
  ASSERT_TRUE(model.ok()) << model.status();
  for (int64_t batch : {1, 2, 5}) {
    Tensor x = RandomTensor({batch, 6}, static_cast<uint32_t>(batch));
    auto out = (*model)->Run({{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ((*out)[0].shape(), (Shape{batch, 3, 2}));
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t i = 0; i < 3; ++i) {
        for (int64_t j = 0; j < 2; ++j) {
          EXPECT_EQ((*out)[0].data<float>()[(n * 3 + i) * 2 + j],
                    x.data<float>()[n * 6 + j * 3 + i]);
        }
      }
    }
  }
  EXPECT_EQ((*model)->outputs()[0].shape, (Shape{-1, 3, 2}));
}

TEST(PlanFoldingTest, ShapeNodesAreNotRunTimeSteps) {
  auto model = CompileBuilt(SplitHeadsModel());
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<std::string> ops;
  for (const auto& layer : (*model)->Layers()) ops.push_back(layer.op);
  EXPECT_THAT(ops, testing::ElementsAre("Reshape", "Transpose"));
}

// torch's expand(batch, seq) pattern: Where(Equal(s, -1 * ones), ones, s)
// on a computed shape, then Expand.
TEST(PlanFoldingTest, TorchExpandPatternGivesTheBatchShape) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4})
      .Initializer("row", Tensor::FromVector<int64_t>({1, 4}, {0, 1, 2, 3}))
      .Constant("minus1", Tensor::FromVector<int64_t>({}, {-1}))
      .Node("Shape", {"x"}, {"s"})
      .Node("ConstantOfShape", {"shape_of_s"}, {"ones"},
            {{"value", Tensor::FromVector<int64_t>({1}, {1})}})
      .Node("Shape", {"s"}, {"shape_of_s"})
      .Node("Mul", {"ones", "minus1"}, {"neg"})
      .Node("Equal", {"s", "neg"}, {"is_neg"})
      .Node("Where", {"is_neg", "ones", "s"}, {"target"})
      .Node("Expand", {"row", "target"}, {"ids"})
      .Node("Cast", {"ids"}, {"y"}, {{"to", 1}})
      .Output("y");
  auto model = CompileBuilt(b);
  ASSERT_TRUE(model.ok()) << model.status();
  auto out = (*model)->Run({{"x", RandomTensor({3, 4}, 1)}});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].shape(), (Shape{3, 4}));
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ((*out)[0].data<float>()[i], i % 4);
}

TEST(PlanFoldingTest, IntegerArithmeticBroadcasts) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 2})
      .Initializer("k", Int64s({10, 3}))
      .Node("Shape", {"x"}, {"s"})  // [B, 2]
      .Node("Mul", {"s", "k"}, {"m"})
      .Node("Div", {"m", "k"}, {"d"})
      .Node("Sub", {"m", "d"}, {"diff"})
      .Node("Add", {"diff", "k"}, {"sum"})
      .Node("Cast", {"sum"}, {"y"}, {{"to", 1}})
      .Output("y");
  auto model = CompileBuilt(b);
  ASSERT_TRUE(model.ok()) << model.status();
  auto out = (*model)->Run({{"x", RandomTensor({7, 2}, 1)}});
  ASSERT_TRUE(out.ok()) << out.status();
  // m = [70, 6], d = [7, 2], diff = [63, 4], sum = [73, 7].
  EXPECT_THAT((*out)[0].values<float>(), testing::ElementsAre(73.f, 7.f));
}

}  // namespace
}  // namespace qs
