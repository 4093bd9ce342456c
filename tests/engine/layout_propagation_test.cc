// Values between layout-aware kernels (Conv, QConv, pools, Relu/Clip, Add,
// QuantizeLinear) stay in the blocked layout oneDNN picked instead of being
// reordered to plain NCHW and back at every layer (plan.cc,
// OpContext::out_layout_free). The answers must not change: a model is
// compared with itself built with every intermediate value exposed as a
// graph output, which keeps every value plain.
#include <cstdlib>
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

const std::vector<int64_t> kPads1 = {1, 1, 1, 1};

// A residual block with 6 channels (not a multiple of the 8-channel blocks,
// so blocked buffers carry padding), a per-tensor Quantize/Dequantize pair,
// a pool, a 1x1 conv and a global average pool.
OnnxBuilder ResidualModel(bool expose_intermediates) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 10, 10})
      .Initializer("w1", RandomTensor({6, 3, 3, 3}, 1, -0.5f, 0.5f))
      .Initializer("b1", RandomTensor({6}, 2))
      .Initializer("w2", RandomTensor({6, 6, 3, 3}, 3, -0.3f, 0.3f))
      .Initializer("w3", RandomTensor({5, 6, 1, 1}, 4))
      .Initializer("scale", Tensor::FromVector<float>({}, {0.02f}))
      .Initializer("zp", Tensor::FromVector<uint8_t>({}, {128}))
      .Node("Conv", {"x", "w1", "b1"}, {"c1"}, {{"pads", kPads1}})
      .Node("Relu", {"c1"}, {"r1"})
      .Node("Conv", {"r1", "w2"}, {"c2"}, {{"pads", kPads1}})
      .Node("Add", {"c2", "r1"}, {"a"})
      .Node("Relu", {"a"}, {"r2"})
      .Node("QuantizeLinear", {"r2", "scale", "zp"}, {"q"})
      .Node("DequantizeLinear", {"q", "scale", "zp"}, {"dq"})
      .Node("MaxPool", {"dq"}, {"p"},
            {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}})
      .Node("Conv", {"p", "w3"}, {"c3"})
      .Node("Clip", {"c3"}, {"k"})
      .Node("GlobalAveragePool", {"k"}, {"g"})
      .Node("Flatten", {"g"}, {"y"})
      .Output("y");
  if (expose_intermediates) {
    for (const char* v : {"c1", "r1", "c2", "a", "r2", "q", "dq", "p", "c3", "k", "g"}) {
      b.Output(v);
    }
  }
  return b;
}

TEST(LayoutPropagationTest, BlockedChainAnswersLikeThePlainOne) {
  auto blocked = CompileBuilt(ResidualModel(false));
  auto plain = CompileBuilt(ResidualModel(true));
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  ASSERT_TRUE(plain.ok()) << plain.status();

  int opaque = 0;
  for (const auto& layer : (*blocked)->Layers()) opaque += layer.opaque_output;
  EXPECT_GE(opaque, 5) << "the chain should stay blocked between layers";
  for (const auto& layer : (*plain)->Layers()) {
    EXPECT_FALSE(layer.opaque_output) << layer.node << " feeds a graph output";
  }

  for (int64_t batch : {1, 3}) {
    Tensor x = RandomTensor({batch, 3, 10, 10}, 7 + static_cast<uint32_t>(batch));
    auto want = (*plain)->Run({{"x", x}});
    auto got = (*blocked)->Run({{"x", x}});
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ((*got)[0].shape(), (Shape{batch, 5}));
    EXPECT_LT(MaxAbsDiff((*got)[0], (*want)[0]), 1e-4) << "batch " << batch;
  }
}

TEST(LayoutPropagationTest, ObserversSeePlainValues) {
  auto blocked = CompileBuilt(ResidualModel(false));
  auto plain = CompileBuilt(ResidualModel(true));
  ASSERT_TRUE(blocked.ok() && plain.ok());
  Tensor x = RandomTensor({2, 3, 10, 10}, 11);
  std::map<std::string, Tensor> seen;
  Plan::ValueObserver observe = [&](const std::string& name, const Tensor& t) {
    seen[name] = t.Clone();
  };
  ASSERT_TRUE((*blocked)->RunOrdered({x}, &observe).ok());
  auto want = (*plain)->Run({{"x", x}});
  ASSERT_TRUE(want.ok()) << want.status();
  // Outputs after y, in the order ResidualModel(true) declares them.
  const std::vector<std::string> names = {"c1", "r1", "c2", "a",  "r2", "q",
                                          "dq", "p",  "c3", "k", "g"};
  int compared = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!seen.count(names[i])) continue;  // c1, c3, a: Relu/Clip fused into the conv / Add
    ++compared;
    const Tensor& got = seen[names[i]];
    const Tensor& expected = (*want)[i + 1];
    if (expected.dtype() == DataType::kUint8) {  // codes: a float ulp may cross a rounding tie
      ASSERT_EQ(got.dtype(), DataType::kUint8);
      ASSERT_EQ(got.shape(), expected.shape());
      for (int64_t j = 0; j < got.num_elements(); ++j) {
        ASSERT_LE(std::abs(got.data<uint8_t>()[j] - expected.data<uint8_t>()[j]), 1) << j;
      }
      continue;
    }
    EXPECT_LT(MaxAbsDiff(got, expected), 1e-4) << names[i];
  }
  EXPECT_EQ(compared, 8);  // c3: its Clip was fused too; a: its Relu
}

// 1-D convolutions (audio, sequences): blocked 3-D layouts through a pool.
OnnxBuilder Conv1dModel(bool expose_intermediates) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4, 32})
      .Initializer("w1", RandomTensor({12, 4, 3}, 21, -0.5f, 0.5f))
      .Initializer("w2", RandomTensor({3, 12, 3}, 22, -0.5f, 0.5f))
      .Node("Conv", {"x", "w1"}, {"c1"}, {{"pads", std::vector<int64_t>{1, 1}}})
      .Node("Relu", {"c1"}, {"r1"})
      .Node("MaxPool", {"r1"}, {"p"},
            {{"kernel_shape", std::vector<int64_t>{2}}, {"strides", std::vector<int64_t>{2}}})
      .Node("Conv", {"p", "w2"}, {"y"})
      .Output("y");
  if (expose_intermediates) b.Output("r1").Output("p");
  return b;
}

TEST(LayoutPropagationTest, OneDimensionalChainAnswersLikeThePlainOne) {
  auto blocked = CompileBuilt(Conv1dModel(false));
  auto plain = CompileBuilt(Conv1dModel(true));
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  ASSERT_TRUE(plain.ok()) << plain.status();
  Tensor x = RandomTensor({2, 4, 32}, 23);
  auto want = (*plain)->Run({{"x", x}});
  auto got = (*blocked)->Run({{"x", x}});
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ((*got)[0].shape(), (Shape{2, 3, 14}));
  EXPECT_LT(MaxAbsDiff((*got)[0], (*want)[0]), 1e-4);
}

}  // namespace
}  // namespace qs
