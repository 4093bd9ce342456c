// Row-wise embedding quantization: fp16 conversion, the packed row format
// against a naive per-element reference, and the graph rewrite (Gather of a
// constant table -> QEmbedding) run end to end.
#include "engine/quant/quantize_embeddings.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "engine/ops/rowwise_table.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::OnnxBuilder;
using test::RandomTensor;
using ::testing::HasSubstr;

TEST(HalfTest, KnownEncodingsAndRoundTrip) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.f), 0x7bff);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);           // overflow -> inf
  EXPECT_EQ(FloatToHalf(std::ldexp(1.f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.f, -11)), 0x3c02);  // tie -> even (up)
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite positive half survives
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h | 0x8000))), h | 0x8000) << h;
  }
  EXPECT_FLOAT_EQ(HalfToFloat(0x3555), 0.333251953125f);
}

class RowwiseTest : public ::testing::TestWithParam<int> {};

TEST_P(RowwiseTest, DequantizedRowsAreWithinHalfAStepOfTheTable) {
  const int bits = GetParam();
  const int64_t rows = 50, dim = 7;  // odd dim: the last 4-bit byte is half used
  Tensor table = RandomTensor({rows, dim}, 3, -0.3f, 0.5f);
  table.data<float>()[5 * dim] = 0.f;  // a row with one constant value ...
  for (int64_t j = 0; j < dim; ++j) table.data<float>()[6 * dim + j] = 0.25f;  // ... and a flat row
  const Tensor packed = QuantizeRowwise(table, bits);
  ASSERT_EQ(packed.shape(), (Shape{rows, RowwiseRowBytes(dim, bits)}));
  EXPECT_EQ(RowwiseRowBytes(dim, bits), bits == 8 ? 11 : 8);
  std::vector<float> row(dim);
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(packed, r, dim, bits, row.data());
    const float* x = table.data<float>() + r * dim;
    const float lo = *std::min_element(x, x + dim), hi = *std::max_element(x, x + dim);
    // Half a quantization step, plus fp16 rounding of scale and offset
    // (relative 2^-11 each, times at most 2^bits - 1 steps for the scale).
    const float step = (hi - lo) / ((1 << bits) - 1);
    const float tol = 0.5f * step + std::ldexp(std::fabs(lo) + (hi - lo), -10) + 1e-7f;
    for (int64_t j = 0; j < dim; ++j) {
      EXPECT_NEAR(row[j], x[j], tol) << "row " << r << " col " << j << " bits " << bits;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Bits, RowwiseTest, ::testing::Values(8, 4));

// y = Gather(table, idx); z = Gather(table, idx2) (shared table); w = MatMul(x, other)
OnnxBuilder LookupModel(const Tensor& table) {
  OnnxBuilder b(13);
  b.Input("idx", {-1, 3}, onnx::TensorProto::INT64)
      .Input("idx2", {-1}, onnx::TensorProto::INT32)
      .Initializer("emb", table)
      .Node("Gather", {"emb", "idx"}, {"y"}, {}, "lookup")
      .Node("Gather", {"emb", "idx2"}, {"z"}, {}, "lookup2")
      .Output("y").Output("z");
  return b;
}

TEST(QuantizeEmbeddingsTest, GathersBecomeQEmbeddingOverOneSharedTable) {
  const Tensor table = RandomTensor({40, 16}, 4);
  auto graph = test::ImportBuilt(LookupModel(table));
  ASSERT_TRUE(graph.ok()) << graph.status();
  for (int bits : {8, 4}) {
    quant::QuantizedGraph q{*graph, {}, graph->InitializerBytes()};
    ASSERT_TRUE(quant::QuantizeEmbeddings(q, quant::EmbeddingPolicy{bits}).ok());
    ASSERT_EQ(q.layers.size(), 1u);  // one table, read by two lookups
    EXPECT_EQ(q.layers[0].weight_bytes, 40 * RowwiseRowBytes(16, bits));
    EXPECT_EQ(q.weight_bytes, q.graph.InitializerBytes());
    EXPECT_EQ(q.graph.FindInitializer("emb"), nullptr);
    for (const Node& n : q.graph.nodes) EXPECT_EQ(n.op_type, "QEmbedding");

    auto m = CompiledModel::Compile(q.graph);
    ASSERT_TRUE(m.ok()) << m.status();
    const Tensor idx = Tensor::FromVector<int64_t>({2, 3}, {0, 39, -1, 5, 5, 17});
    const Tensor idx2 = Tensor::FromVector<int32_t>({2}, {-40, 3});
    auto out = (*m)->Run({{"idx", idx}, {"idx2", idx2}});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ((*out)[0].shape(), (Shape{2, 3, 16}));
    ASSERT_EQ((*out)[1].shape(), (Shape{2, 16}));
    const Tensor packed = *q.graph.FindInitializer(q.graph.nodes[0].inputs[0]);
    std::vector<float> want(16);
    const int64_t rows_y[] = {0, 39, 39, 5, 5, 17}, rows_z[] = {0, 3};
    for (int i = 0; i < 6; ++i) {
      DequantizeRow(packed, rows_y[i], 16, bits, want.data());
      for (int j = 0; j < 16; ++j) {
        ASSERT_EQ((*out)[0].data<float>()[i * 16 + j], want[j]);
        // and close to the float table
        EXPECT_NEAR(want[j], table.data<float>()[rows_y[i] * 16 + j], bits == 8 ? 0.01 : 0.15);
      }
    }
    for (int i = 0; i < 2; ++i) {
      DequantizeRow(packed, rows_z[i], 16, bits, want.data());
      for (int j = 0; j < 16; ++j) ASSERT_EQ((*out)[1].data<float>()[i * 16 + j], want[j]);
    }
    auto bad = (*m)->Run({{"idx", Tensor::FromVector<int64_t>({1, 3}, {0, 40, 1})},
                          {"idx2", idx2}});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bad.status().message(), HasSubstr("lookup"));
  }
}

TEST(QuantizeEmbeddingsTest, TiedTableStaysStoredAndOtherGathersAreLeftAlone) {
  OnnxBuilder b(13);
  b.Input("idx", {-1}, onnx::TensorProto::INT64).Input("x", {-1, 8})
      .Initializer("emb", RandomTensor({10, 8}, 5))
      .Node("Gather", {"emb", "idx"}, {"y"}, {}, "lookup")
      .Node("Gather", {"x", "idx"}, {"g"}, {{"axis", 1}}, "runtime_data")
      .Node("Gemm", {"x", "emb"}, {"w"}, {{"transB", 1}}, "tied")  // output layer tied to emb
      .Output("y").Output("g").Output("w");
  auto graph = test::ImportBuilt(b);
  ASSERT_TRUE(graph.ok()) << graph.status();
  quant::QuantizedGraph q{*graph, {}, graph->InitializerBytes()};
  ASSERT_TRUE(quant::QuantizeEmbeddings(q, quant::EmbeddingPolicy{4}).ok());
  EXPECT_EQ(q.graph.nodes[0].op_type, "QEmbedding");
  EXPECT_EQ(q.graph.nodes[1].op_type, "Gather");  // data is not a constant
  ASSERT_NE(q.graph.FindInitializer("emb"), nullptr);  // still read by the Gemm
  EXPECT_EQ(q.weight_bytes, q.graph.InitializerBytes());
  EXPECT_EQ(q.weight_bytes, graph->InitializerBytes() + 10 * RowwiseRowBytes(8, 4));
  EXPECT_FALSE(quant::QuantizeEmbeddings(q, quant::EmbeddingPolicy{2}).ok());
}

}  // namespace
}  // namespace qs
