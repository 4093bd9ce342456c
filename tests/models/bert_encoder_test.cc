// The BERT-style encoder as torch 1.13 exports it (tools/zoo/bert_encoder.py):
// the engine's fp32 output equals torch's on the script's sample inputs, at
// several batch sizes (the shape subgraphs are evaluated per plan).
//
// Two models: the committed tiny twin (tests/models/data/bert_tiny.*, 2
// layers, d_model 64) and the full encoder (4 layers, d_model 256, vocab
// 30522, seq 128) generated into the build tree by the bert_encoder_model
// ctest fixture (QS_BERT_DIR).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "engine/compiled_model.h"
#include "engine/data/npy.h"
#include "engine/onnx_importer.h"

namespace qs {
namespace {

const std::string kTiny = QS_SOURCE_DIR "/tests/models/data/bert_tiny";
const std::string kFull = QS_BERT_DIR "/bert_encoder";

struct Samples {
  NamedTensors inputs;
  Tensor expected;
};

Samples LoadSamples(const std::string& base) {
  Samples s;
  for (const char* name : {"input_ids", "token_type_ids", "attention_mask"}) {
    auto t = ReadNpy(base + "_" + name + ".npy");
    EXPECT_TRUE(t.ok()) << t.status();
    s.inputs.emplace_back(name, *t);
  }
  auto out = ReadNpy(base + "_output.npy");
  EXPECT_TRUE(out.ok()) << out.status();
  s.expected = *out;
  return s;
}

std::unique_ptr<CompiledModel> Load(const std::string& base, bool optimize = true) {
  auto graph = ImportOnnxFile(base + ".onnx");
  EXPECT_TRUE(graph.ok()) << graph.status();
  CompileOptions options;
  options.optimize = optimize;
  options.intra_op_threads = 1;  // robust on a busy 2-core CI machine
  auto model = CompiledModel::Compile(std::move(*graph), options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// Rows [begin, begin+count) of a [N, ...] tensor.
Tensor Rows(const Tensor& t, int64_t begin, int64_t count) {
  Shape shape = t.shape();
  shape[0] = count;
  Tensor out(t.dtype(), shape);
  const size_t row = t.byte_size() / t.shape()[0];
  std::memcpy(out.raw_data(), static_cast<const char*>(t.raw_data()) + begin * row, count * row);
  return out;
}

// Largest |a - b| over all elements (shapes must match).
double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a.data<float>()[i]) -
                                      b.data<float>()[i]));
  }
  return worst;
}

// Tolerance: the output is LayerNorm'd (|values| up to ~4 with gamma ~ 1 ±
// 0.1); fp32 results that differ from torch's only in summation order
// (oneDNN's blocked GEMMs and reductions vs torch's) agree to ~1e-6 per op;
// after 2-4 layers, 1e-4 absolute leaves ~50x headroom while a wrong mask, a
// wrong head split or a missing bias moves outputs by 1e-2 or more.
constexpr double kTolerance = 1e-4;

void ExpectMatchesTorch(const std::string& base, bool optimize) {
  auto model = Load(base, optimize);
  ASSERT_NE(model, nullptr);
  Samples s = LoadSamples(base);
  auto out = model->Run(s.inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LT(MaxAbsDiff((*out)[0], s.expected), kTolerance);
  // One sample at a time: a different plan (batch 1), the same numbers.
  const int64_t n = s.expected.shape()[0];
  for (int64_t i = 0; i < n; ++i) {
    NamedTensors one;
    for (const auto& [name, t] : s.inputs) one.emplace_back(name, Rows(t, i, 1));
    auto row = model->Run(one);
    ASSERT_TRUE(row.ok()) << row.status();
    EXPECT_LT(MaxAbsDiff((*row)[0], Rows(s.expected, i, 1)), kTolerance) << "sample " << i;
  }
}

TEST(BertEncoderTest, TinyMatchesTorch) { ExpectMatchesTorch(kTiny, /*optimize=*/true); }

TEST(BertEncoderTest, TinyMatchesTorchUnoptimized) {
  ExpectMatchesTorch(kTiny, /*optimize=*/false);
}

TEST(BertEncoderTest, TinyDeclaresDynamicBatch) {
  auto model = Load(kTiny);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(model->inputs().size(), 3u);
  for (const auto& in : model->inputs()) {
    EXPECT_EQ(in.shape, (Shape{-1, 16})) << in.name;
    EXPECT_EQ(in.dtype, DataType::kInt64) << in.name;
  }
  EXPECT_EQ(model->outputs()[0].shape, (Shape{-1, 16, 64}));
}

TEST(BertEncoderTest, MaskedTokensDoNotChangeOtherPositions) {
  // With the last position masked, changing its token leaves positions
  // 0..14 unchanged; without the mask, it changes them.
  auto model = Load(kTiny);
  ASSERT_NE(model, nullptr);
  Samples s = LoadSamples(kTiny);
  const Tensor ids = Rows(s.inputs[0].second, 0, 1), types = Rows(s.inputs[1].second, 0, 1);
  Tensor changed = ids.Clone();
  changed.data<int64_t>()[15] = (changed.data<int64_t>()[15] + 1) % 1000;
  Tensor mask = Rows(s.inputs[2].second, 0, 1).Clone();
  ASSERT_EQ(mask.data<int64_t>()[15], 1);  // sample 0 has no padding
  auto run = [&](const Tensor& x, const Tensor& m) {
    auto out = model->Run({{"input_ids", x}, {"token_type_ids", types}, {"attention_mask", m}});
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? (*out)[0] : Tensor();
  };
  // Largest difference over positions 0..14 ([1, 16, 64] outputs).
  auto first15 = [](const Tensor& a, const Tensor& b) {
    double worst = 0;
    for (int64_t i = 0; i < 15 * 64; ++i) {
      worst = std::max<double>(worst, std::fabs(a.data<float>()[i] - b.data<float>()[i]));
    }
    return worst;
  };
  EXPECT_GT(first15(run(ids, mask), run(changed, mask)), 1e-3);
  mask.data<int64_t>()[15] = 0;
  EXPECT_LT(first15(run(ids, mask), run(changed, mask)), 1e-6);
}

std::map<std::string, int> OpCounts(const CompiledModel& model) {
  std::map<std::string, int> counts;
  for (const auto& n : model.graph().nodes) ++counts[n.op_type];
  return counts;
}

TEST(BertEncoderTest, TinyGraphIsFused) {
  auto model = Load(kTiny);
  ASSERT_NE(model, nullptr);
  auto ops = OpCounts(*model);
  // 1 embedding LayerNorm + 2 per layer; no decomposed pieces remain.
  EXPECT_EQ(ops["LayerNormalization"], 5);
  for (const char* gone : {"ReduceMean", "Pow", "Sqrt", "Erf", "Gelu"}) {
    EXPECT_EQ(ops[gone], 0) << gone;
  }
  // The attention scores' 1/√d_head and the head split/merge Transposes are
  // folded into the attention MatMuls (passes/fold_into_matmul.cc).
  EXPECT_EQ(ops["Div"], 0);
  EXPECT_EQ(ops["Transpose"], 0);
  // 6 Linear layers per layer, each one MatMul with its bias; the 2 FFN
  // up-projections carry GELU as a post-op.
  int linear = 0, gelu = 0;
  for (const auto& n : model->graph().nodes) {
    if (n.op_type != "MatMul" || n.inputs.size() != 3) continue;
    ++linear;
    for (const auto& a : n.fused_activations) gelu += a.kind == FusedActivation::Kind::kGeluErf;
  }
  EXPECT_EQ(linear, 12);
  EXPECT_EQ(gelu, 2);
  // What is left: 2 attention MatMuls per layer, residual and mask Adds.
  EXPECT_EQ(ops["MatMul"], 12 + 4);
  EXPECT_EQ(ops["Softmax"], 2);
  // Q·Kᵀ reads both heads' views and is scaled; P·V writes the merged heads.
  int qk = 0, pv = 0;
  for (const auto& n : model->graph().nodes) {
    if (n.op_type != "MatMul" || n.inputs.size() != 2) continue;
    qk += n.HasAttr("a_perm") && n.HasAttr("b_perm") && n.HasAttr("alpha");
    pv += n.HasAttr("b_perm") && n.HasAttr("y_perm");
  }
  EXPECT_EQ(qk, 2);
  EXPECT_EQ(pv, 2);
}

TEST(BertEncoderTest, FullMatchesTorch) { ExpectMatchesTorch(kFull, /*optimize=*/true); }

}  // namespace
}  // namespace qs
