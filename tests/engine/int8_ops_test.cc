// The int8 layer kernels against exact integer references, and the AVX2
// saturation trap: quantized layers must be exact for every u8 activation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "engine/compiled_model.h"
#include "engine/cpu_features.h"
#include "engine/ops/quantized_layer.h"
#include "engine/quant/weight_quantizer.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace qs {
namespace {

// A graph with one quantized dense/conv layer whose weights are `w` (float,
// quantized here with `max_abs_code`) and u8 input x ≈ x_scale · code.
Graph OneLayer(const std::string& op, const Tensor& w, int bits, int max_abs_code,
               const Shape& x_shape, float x_scale, DataType out_dtype, float out_scale) {
  quant::WeightQuantSpec spec;
  spec.bits = bits;
  spec.max_abs_code = max_abs_code;
  auto q = quant::QuantizeWeights(w, spec);
  EXPECT_TRUE(q.ok()) << q.status();
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"x", DataType::kUint8, x_shape});
  g.outputs.push_back({"y", out_dtype, {}});
  const int64_t ch = static_cast<int64_t>(q->scales.size());
  g.initializers["packed"] = Tensor::FromVector<uint8_t>({int64_t(q->packed.size())}, q->packed);
  g.initializers["levels"] = Tensor::FromVector<int8_t>({ch, int64_t{1} << bits}, q->level_codes);
  g.initializers["scales"] = Tensor::FromVector<float>({ch}, q->scales);
  Node n;
  n.name = "layer";
  n.op_type = op;
  n.domain = kQuantDomain;
  n.inputs = {"x", "packed", "levels", "scales"};
  n.outputs = {"y"};
  n.attributes["x_scale"] = x_scale;
  n.attributes["w_bits"] = int64_t{bits};
  n.attributes["w_shape"] = w.shape();
  n.attributes["out_dtype"] = int64_t{static_cast<int>(out_dtype)};
  n.attributes["out_scale"] = out_scale;
  g.nodes.push_back(n);
  return g;
}

Tensor RandomWeights(Shape shape, uint32_t seed) {
  Tensor w(DataType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (int64_t i = 0; i < w.num_elements(); ++i) w.data<float>()[i] = dist(rng);
  return w;
}

// The worst case for the saturation trap: every activation code 255.
Tensor FullScaleInput(Shape shape) {
  Tensor x(DataType::kUint8, shape);
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<uint8_t>()[i] = 255;
  return x;
}

TEST(Int8OpsTest, DenseIsExactForFullRangeActivations) {
  const int64_t n = 16, k = 64;
  Tensor w = RandomWeights({n, k}, 1);
  const float x_scale = 0.01f;
  Graph g = OneLayer("QDense", w, 8, MaxSafeWeightCode(), {-1, k}, x_scale,
                     DataType::kFloat32, 1.f);
  quant::WeightQuantSpec spec;
  spec.max_abs_code = MaxSafeWeightCode();
  auto q = quant::QuantizeWeights(w, spec);
  auto model = CompiledModel::Compile(g, {.optimize = false});
  ASSERT_TRUE(model.ok()) << model.status();
  Tensor x = FullScaleInput({3, k});
  for (int64_t i = 0; i < k; i += 3) x.data<uint8_t>()[i] = static_cast<uint8_t>(i);
  auto y = (*model)->Run({{"x", x}});
  ASSERT_TRUE(y.ok()) << y.status();
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      int64_t acc = 0;  // exact integer reference
      for (int64_t i = 0; i < k; ++i) acc += int64_t{x.data<uint8_t>()[r * k + i]} * q->codes[o * k + i];
      const double want = x_scale * q->scales[o] * static_cast<double>(acc);
      EXPECT_NEAR((*y)[0].data<float>()[r * n + o], want, 1e-4 * std::fabs(want) + 1e-4)
          << "row " << r << " out " << o;
    }
  }
}

// Asymmetric u8 codes of a signed activation range (BERT's LayerNorm
// outputs): x = x_scale · (code − zp). The zero point is folded into the
// bias, so the u8×s8 primitive must give exactly the signed reference —
// with and without a float bias, and for the extreme codes 0 and 255.
TEST(Int8OpsTest, DenseFoldsTheInputZeroPointIntoTheBias) {
  const int64_t n = 8, k = 48;
  const int32_t zp = 117;
  Tensor w = RandomWeights({n, k}, 5);
  const float x_scale = 0.02f;
  quant::WeightQuantSpec spec;
  spec.max_abs_code = MaxSafeWeightCode();
  auto q = quant::QuantizeWeights(w, spec);
  ASSERT_TRUE(q.ok());
  std::vector<float> bias(n);
  for (int64_t o = 0; o < n; ++o) bias[o] = 0.25f * static_cast<float>(o) - 1.f;
  for (bool with_bias : {false, true}) {
    Graph g = OneLayer("QDense", w, 8, MaxSafeWeightCode(), {-1, k}, x_scale,
                       DataType::kFloat32, 1.f);
    g.nodes[0].attributes["x_zero_point"] = int64_t{zp};
    if (with_bias) {
      g.initializers["bias"] = Tensor::FromVector<float>({n}, bias);
      g.nodes[0].inputs.push_back("bias");
    }
    auto model = CompiledModel::Compile(g, {.optimize = false});
    ASSERT_TRUE(model.ok()) << model.status();
    Tensor x(DataType::kUint8, {2, k});
    for (int64_t i = 0; i < 2 * k; ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>((i * 37) % 256);
    x.data<uint8_t>()[0] = 0;
    x.data<uint8_t>()[1] = 255;
    auto y = (*model)->Run({{"x", x}});
    ASSERT_TRUE(y.ok()) << y.status();
    for (int64_t r = 0; r < 2; ++r) {
      for (int64_t o = 0; o < n; ++o) {
        int64_t acc = 0;  // exact signed reference
        for (int64_t i = 0; i < k; ++i) {
          acc += (int64_t{x.data<uint8_t>()[r * k + i]} - zp) * q->codes[o * k + i];
        }
        const double want = x_scale * q->scales[o] * static_cast<double>(acc) +
                            (with_bias ? bias[o] : 0.0);
        EXPECT_NEAR((*y)[0].data<float>()[r * n + o], want, 1e-4 * std::fabs(want) + 1e-4)
            << "bias " << with_bias << " row " << r << " out " << o;
      }
    }
  }
}

// Without padding every conv output sees only real inputs, so the folded
// zero point is exact there too (MobileNetV2's pointwise expansions read the
// signed residual stream): compared with the float convolution of the
// dequantized input and weights.
TEST(Int8OpsTest, UnpaddedConvFoldsTheInputZeroPoint) {
  const int32_t zp = 90;
  const float x_scale = 0.05f;
  Tensor w = RandomWeights({4, 3, 3, 3}, 6);
  Graph g = OneLayer("QConv", w, 8, MaxSafeWeightCode(), {1, 3, 8, 8}, x_scale,
                     DataType::kFloat32, 1.f);
  g.nodes[0].attributes["x_zero_point"] = int64_t{zp};
  auto model = CompiledModel::Compile(g, {.optimize = false});
  ASSERT_TRUE(model.ok()) << model.status();

  quant::WeightQuantSpec spec;
  spec.max_abs_code = MaxSafeWeightCode();
  auto q = quant::QuantizeWeights(w, spec);
  ASSERT_TRUE(q.ok());
  Tensor wf(DataType::kFloat32, w.shape());
  const int64_t per_channel = w.num_elements() / 4;
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    wf.data<float>()[i] = q->scales[i / per_channel] * q->codes[i];
  }
  Graph f;
  f.opset = 13;
  f.inputs.push_back({"x", DataType::kFloat32, {1, 3, 8, 8}});
  f.outputs.push_back({"y", DataType::kFloat32, {}});
  f.initializers["w"] = wf;
  Node conv;
  conv.name = "conv";
  conv.op_type = "Conv";
  conv.inputs = {"x", "w"};
  conv.outputs = {"y"};
  f.nodes.push_back(conv);
  auto reference = CompiledModel::Compile(f, {.optimize = false});
  ASSERT_TRUE(reference.ok()) << reference.status();

  Tensor codes(DataType::kUint8, {1, 3, 8, 8});
  Tensor x(DataType::kFloat32, {1, 3, 8, 8});
  for (int64_t i = 0; i < codes.num_elements(); ++i) {
    codes.data<uint8_t>()[i] = static_cast<uint8_t>((i * 53) % 256);
    x.data<float>()[i] = x_scale * static_cast<float>(codes.data<uint8_t>()[i] - zp);
  }
  auto got = (*model)->Run({{"x", codes}});
  auto want = (*reference)->Run({{"x", x}});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_EQ((*got)[0].shape(), (Shape{1, 4, 6, 6}));
  for (int64_t i = 0; i < (*want)[0].num_elements(); ++i) {
    const float y = (*want)[0].data<float>()[i];
    EXPECT_NEAR((*got)[0].data<float>()[i], y, 1e-4f * std::fabs(y) + 1e-4f) << "element " << i;
  }
}

TEST(Int8OpsTest, AnInputZeroPointIsRefusedForPaddedConvolutions) {
  Tensor w = RandomWeights({4, 3, 3, 3}, 6);
  Graph g = OneLayer("QConv", w, 8, MaxSafeWeightCode(), {1, 3, 8, 8}, 0.1f,
                     DataType::kFloat32, 1.f);
  g.nodes[0].attributes["x_zero_point"] = int64_t{5};
  g.nodes[0].attributes["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  auto model = CompiledModel::Compile(g, {.optimize = false});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()), testing::HasSubstr("x_zero_point"));
}

TEST(Int8OpsTest, ConvRequantizesToU8WithFusedRelu) {
  Tensor w = RandomWeights({4, 3, 3, 3}, 2);
  const float x_scale = 0.02f, out_scale = 0.5f;
  Graph g = OneLayer("QConv", w, 4, MaxSafeWeightCode(), {-1, 3, 5, 5}, x_scale,
                     DataType::kUint8, out_scale);
  g.nodes[0].attributes["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  g.nodes[0].fused_activations.push_back({FusedActivation::Kind::kRelu});
  quant::WeightQuantSpec spec;
  spec.bits = 4;
  spec.max_abs_code = MaxSafeWeightCode();
  auto q = quant::QuantizeWeights(w, spec);
  auto model = CompiledModel::Compile(g, {.optimize = false});
  ASSERT_TRUE(model.ok()) << model.status();
  Tensor x = FullScaleInput({1, 3, 5, 5});
  for (int64_t i = 0; i < x.num_elements(); i += 2) x.data<uint8_t>()[i] = static_cast<uint8_t>(7 * i);
  auto y = (*model)->Run({{"x", x}});
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ((*y)[0].dtype(), DataType::kUint8);
  for (int64_t o = 0; o < 4; ++o) {
    for (int64_t oy = 0; oy < 5; ++oy) {
      for (int64_t ox = 0; ox < 5; ++ox) {
        int64_t acc = 0;
        for (int64_t c = 0; c < 3; ++c) {
          for (int64_t ky = 0; ky < 3; ++ky) {
            for (int64_t kx = 0; kx < 3; ++kx) {
              const int64_t iy = oy + ky - 1, ix = ox + kx - 1;
              if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
              acc += int64_t{x.data<uint8_t>()[(c * 5 + iy) * 5 + ix]} *
                     q->codes[((o * 3 + c) * 3 + ky) * 3 + kx];
            }
          }
        }
        const double real = std::max(0.0, x_scale * q->scales[o] * static_cast<double>(acc));
        const double want = std::min(255.0, std::nearbyint(real / out_scale));
        EXPECT_NEAR((*y)[0].data<uint8_t>()[(o * 5 + oy) * 5 + ox], want, 1.0);
      }
    }
  }
}

TEST(Int8OpsTest, WeightsBeyondTheSafeRangeAreRefusedWithoutVnni) {
  if (CpuHasInt8Vnni()) GTEST_SKIP() << "VNNI: the full s8 range is exact here";
  Tensor w = RandomWeights({8, 32}, 3);
  Graph g = OneLayer("QDense", w, 8, /*max_abs_code=*/127, {-1, 32}, 0.1f,
                     DataType::kFloat32, 1.f);
  auto model = CompiledModel::Compile(g, {.optimize = false});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(model.status().message()), testing::HasSubstr("saturates"));
}

// Documents the trap itself: on this CPU without VNNI, oneDNN's u8×s8 inner
// product with full 8-bit weights silently returns a wrong sum. If this
// test starts failing, oneDNN or the CPU changed and the 63-code limit can
// be revisited.
TEST(Int8OpsTest, SaturationTrapIsRealWithoutVnni) {
  if (CpuHasInt8Vnni()) GTEST_SKIP() << "VNNI: no saturation";
  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const int64_t k = 64;
  memory::desc src({1, k}, memory::data_type::u8, memory::format_tag::ab);
  memory::desc wei({1, k}, memory::data_type::s8, memory::format_tag::any);
  memory::desc dst({1, 1}, memory::data_type::s32, memory::format_tag::ab);
  inner_product_forward::primitive_desc pd({prop_kind::forward_inference, src, wei, dst}, eng);
  std::vector<uint8_t> x(k, 255);
  std::vector<int8_t> w(k, 127);
  int32_t y = 0;
  memory ms(src, eng, x.data()), md(dst, eng, &y);
  memory plain({{1, k}, memory::data_type::s8, memory::format_tag::ab}, eng, w.data());
  memory mw(pd.weights_desc(), eng);
  reorder(plain, mw).execute(s, plain, mw);
  inner_product_forward(pd).execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}});
  s.wait();
  EXPECT_NE(y, 255 * 127 * k) << "oneDNN computed the exact sum: the trap is gone";
}

}  // namespace
}  // namespace qs
