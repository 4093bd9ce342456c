#include "engine/onnx_importer.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "engine/onnx_tensor.h"
#include "engine/ops/op_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::OnnxBuilder;
using test::RandomTensor;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;

// A small valid model: Conv(3->8, 3x3) + Relu, with ~1 KB of weights.
OnnxBuilder ValidModel() {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 8, 8})
      .Initializer("w", RandomTensor({8, 3, 3, 3}, 1))
      .Initializer("b", RandomTensor({8}, 2))
      .Node("Conv", {"x", "w", "b"}, {"c"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}},
            "conv1")
      .Node("Relu", {"c"}, {"y"}, {}, "relu1")
      .Output("y");
  return b;
}

// Writes `bytes` to a fresh file in the test temp dir and returns its path.
std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + "/qs_importer_" +
                           std::to_string(::getpid()) + "_" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

TEST(OnnxImporterTest, ValidModelFileImports) {
  const std::string path = WriteTemp("valid.onnx", ValidModel().Serialize());
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->opset, 13);
  ASSERT_EQ(g->nodes.size(), 2u);
  EXPECT_EQ(g->nodes[0].op_type, "Conv");
  EXPECT_EQ(g->nodes[0].GetInts("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(g->nodes[1].op_type, "Relu");
  ASSERT_EQ(g->inputs.size(), 1u);
  EXPECT_EQ(g->inputs[0].name, "x");
  ASSERT_EQ(g->outputs.size(), 1u);
  EXPECT_EQ(g->outputs[0].name, "y");
  EXPECT_EQ(g->initializers.size(), 2u);
  EXPECT_EQ(g->initializers.at("w").shape(), (Shape{8, 3, 3, 3}));
}

TEST(OnnxImporterTest, MissingFileIsNotFoundAndNamesPath) {
  const std::string path = ::testing::TempDir() + "/definitely/not/here/model.onnx";
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(g.status().message(), HasSubstr(path));
}

TEST(OnnxImporterTest, DirectoryIsRejected) {
  absl::StatusOr<Graph> g = ImportOnnxFile(::testing::TempDir());
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("not a regular file"));
}

TEST(OnnxImporterTest, EmptyFileIsInvalid) {
  const std::string path = WriteTemp("empty.onnx", "");
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), AllOf(HasSubstr(path), HasSubstr("empty")));
}

TEST(OnnxImporterTest, TruncatedFileIsInvalid) {
  const std::string bytes = ValidModel().Serialize();
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = WriteTemp("truncated.onnx", bytes.substr(0, bytes.size() / 2));
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr(path));
}

TEST(OnnxImporterTest, TextFileIsInvalid) {
  const std::string path =
      WriteTemp("text.onnx", "This is a README, not an ONNX model.\nSecond line.\n");
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr(path));
}

TEST(OnnxImporterTest, RandomBytesAreInvalid) {
  std::mt19937 rng(42);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  const std::string path = WriteTemp("random.onnx", bytes);
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr(path));
}

TEST(OnnxImporterTest, ParsableProtoWithoutGraphIsInvalid) {
  onnx::ModelProto m;
  m.set_producer_name("no graph here");
  absl::StatusOr<Graph> g = ImportOnnxBytes(m.SerializeAsString(), "model 'nograph'");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), AllOf(HasSubstr("'nograph'"), HasSubstr("not an ONNX")));
}

TEST(OnnxImporterTest, FileOverSizeLimitIsResourceExhausted) {
  const std::string path = WriteTemp("limit.onnx", ValidModel().Serialize());
  absl::StatusOr<Graph> g = ImportOnnxFile(path, ImportOptions{.max_file_bytes = 100});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(g.status().message(), HasSubstr(path));
}

TEST(OnnxImporterTest, UnsupportedOpNamesNodeOpAndSupportedList) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4}).Node("Celu", {"x"}, {"y"}, {}, "my_celu").Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("'my_celu'"), HasSubstr("'Celu'"), HasSubstr("Conv"),
                    HasSubstr("MatMul"), HasSubstr(SupportedOpsList()),
                    HasSubstr("opsets 1 to 17")));
}

TEST(OnnxImporterTest, CustomDomainOpIsUnsupported) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}, {}, "ms_relu").Output("y");
  b.graph().mutable_node(0)->set_domain("com.microsoft");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("'ms_relu'"), HasSubstr("com.microsoft.Relu")));
}

TEST(OnnxImporterTest, OpsetAboveMaxIsUnsupported) {
  OnnxBuilder b(18);
  b.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("opset 18"), HasSubstr("1 to 17")));
}

TEST(OnnxImporterTest, AbsentOpsetIsInvalid) {
  OnnxBuilder b(/*opset=*/0);
  b.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("no ai.onnx opset"));
}

TEST(OnnxImporterTest, ExplicitOpsetZeroIsInvalid) {
  OnnxBuilder b(/*opset=*/0);
  auto* imp = b.model().add_opset_import();
  imp->set_domain("");
  imp->set_version(0);
  b.model().add_opset_import()->set_domain("com.microsoft");  // other domains don't count
  b.model().mutable_opset_import(1)->set_version(1);
  b.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("no ai.onnx opset"));
}

TEST(OnnxImporterTest, OpBelowItsMinOpsetIsUnsupported) {
  OnnxBuilder b(4);
  b.Input("x", {2, 6})
      .Initializer("shape", Tensor::FromVector<int64_t>({2}, {3, 4}))
      .Node("Reshape", {"x", "shape"}, {"y"}, {}, "reshape_old")
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("'reshape_old'"), HasSubstr("Reshape"),
                    HasSubstr("opsets 5 to 17"), HasSubstr("opset 4")));
  // The same graph at opset 5 is fine.
  b.model().mutable_opset_import(0)->set_version(5);
  EXPECT_TRUE(test::ImportBuilt(b).ok());
}

TEST(OnnxImporterTest, MissingInitializerNamesNodeAndValue) {
  OnnxBuilder b(13);
  b.Input("x", {1, 3, 4, 4})
      .Node("Conv", {"x", "conv_w_missing"}, {"y"}, {}, "conv_lonely")
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("'conv_lonely'"), HasSubstr("'conv_w_missing'")));
}

TEST(OnnxImporterTest, CycleIsDetectedAndNamesANode) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4})
      .Node("Add", {"x", "b_out"}, {"a_out"}, {}, "node_a")
      .Node("Relu", {"a_out"}, {"b_out"}, {}, "node_b")
      .Node("Relu", {"a_out"}, {"y"}, {}, "node_out")
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("cycle"), AnyOf(HasSubstr("'node_a'"), HasSubstr("'node_b'"))));
}

TEST(OnnxImporterTest, ValueProducedTwiceIsInvalid) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4})
      .Node("Relu", {"x"}, {"y"}, {}, "first")
      .Node("Sigmoid", {"x"}, {"y"}, {}, "second")
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), AllOf(HasSubstr("'y'"), HasSubstr("'second'")));
}

TEST(OnnxImporterTest, GraphOutputNeverProducedIsInvalid) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y").Output("phantom_out");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("'phantom_out'"));
}

TEST(OnnxImporterTest, GraphWithoutOutputsIsInvalid) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"});
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("no outputs"));
}

TEST(OnnxImporterTest, RawDataSizeMismatchNamesInitializer) {
  onnx::TensorProto w = TensorToProto(RandomTensor({4, 3}, 3), "");
  w.set_raw_data(w.raw_data().substr(0, 40));  // 10 floats for a [4,3] tensor
  OnnxBuilder b(13);
  b.Input("x", {2, 4})
      .Initializer("fc.weight", w)
      .Node("MatMul", {"x", "fc.weight"}, {"y"})
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("'fc.weight'"), HasSubstr("40 bytes"), HasSubstr("48")));
}

TEST(OnnxImporterTest, TypedDataCountMismatchNamesInitializer) {
  onnx::TensorProto w;
  w.set_data_type(onnx::TensorProto::FLOAT);
  w.add_dims(2);
  w.add_dims(2);
  for (float v : {1.f, 2.f, 3.f}) w.add_float_data(v);
  OnnxBuilder b(13);
  b.Input("x", {2, 2}).Initializer("short_w", w).Node("MatMul", {"x", "short_w"}, {"y"}).Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), AllOf(HasSubstr("'short_w'"), HasSubstr("holds 3")));
}

TEST(OnnxImporterTest, AbsurdInitializerDimsAreResourceExhausted) {
  for (bool raw : {true, false}) {
    onnx::TensorProto w;
    w.set_data_type(onnx::TensorProto::FLOAT);
    w.add_dims(int64_t{1} << 40);
    w.add_dims(int64_t{1} << 40);
    if (raw) {
      w.set_raw_data(std::string(16, '\0'));
    } else {
      w.add_float_data(1.f);
    }
    OnnxBuilder b(13);
    b.Input("x", {2, 2}).Initializer("huge_w", w).Node("MatMul", {"x", "huge_w"}, {"y"}).Output("y");
    absl::StatusOr<Graph> g = test::ImportBuilt(b);
    ASSERT_FALSE(g.ok()) << "raw=" << raw;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kResourceExhausted) << "raw=" << raw;
    EXPECT_THAT(g.status().message(), HasSubstr("'huge_w'"));
  }
}

TEST(OnnxImporterTest, NegativeInitializerDimIsInvalid) {
  onnx::TensorProto w;
  w.set_data_type(onnx::TensorProto::FLOAT);
  w.add_dims(-3);
  OnnxBuilder b(13);
  b.Input("x", {3}).Initializer("neg_w", w).Node("Add", {"x", "neg_w"}, {"y"}).Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), AllOf(HasSubstr("'neg_w'"), HasSubstr("-3")));
}

TEST(OnnxImporterTest, ConstantNodesBecomeInitializers) {
  OnnxBuilder b(13);
  b.Input("x", {1, 3})
      .Constant("k", Tensor::FromVector<float>({3}, {1.5f, -2.f, 4.f}), "const_k")
      .Node("Add", {"x", "k"}, {"y"}, {}, "add")
      .Output("y");
  // The attribute forms value_floats / value_int too.
  b.Node("Constant", {}, {"kf"}, {{"value_floats", std::vector<float>{0.5f, 0.25f}}});
  b.Node("Constant", {}, {"ki"}, {{"value_int", 7}});
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].op_type, "Add");
  ASSERT_TRUE(g->IsConstant("k"));
  const Tensor& k = g->initializers.at("k");
  EXPECT_EQ(k.shape(), Shape{3});
  EXPECT_THAT(k.values<float>(), ::testing::ElementsAre(1.5f, -2.f, 4.f));
  ASSERT_TRUE(g->IsConstant("kf"));
  EXPECT_THAT(g->initializers.at("kf").values<float>(), ::testing::ElementsAre(0.5f, 0.25f));
  ASSERT_TRUE(g->IsConstant("ki"));
  EXPECT_EQ(g->initializers.at("ki").dtype(), DataType::kInt64);
  EXPECT_EQ(g->initializers.at("ki").ScalarAsInt64(), 7);
}

TEST(OnnxImporterTest, InputsThatAreInitializersAreNotInputs) {
  OnnxBuilder b(9, /*ir_version=*/3);
  b.Input("x", {1, 4})
      .Input("w", {4, 2})  // IR < 4 lists weights as inputs too
      .Initializer("w", RandomTensor({4, 2}, 5))
      .Node("MatMul", {"x", "w"}, {"y"})
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->inputs.size(), 1u);
  EXPECT_EQ(g->inputs[0].name, "x");
  EXPECT_TRUE(g->IsConstant("w"));
}

TEST(OnnxImporterTest, ReverseOrderedNodesAreTopologicallySorted) {
  OnnxBuilder b(13);
  b.Input("x", {1, 4})
      .Node("Sigmoid", {"s"}, {"y"}, {}, "third")
      .Node("Add", {"r", "r"}, {"s"}, {}, "second")
      .Node("Relu", {"x"}, {"r"}, {}, "first")
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<std::string> names;
  for (const auto& n : g->nodes) names.push_back(n.name);
  EXPECT_THAT(names, ::testing::ElementsAre("first", "second", "third"));
}

TEST(OnnxImporterTest, DynamicDimsComeBackNegative) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 8, 8}).Node("Relu", {"x"}, {"y"}).Output("y", {-1, 3, 8, 8});
  // A dim with neither dim_value nor dim_param is dynamic too.
  b.graph().mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()
      ->mutable_dim(2)->clear_dim_value();
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->inputs.size(), 1u);
  EXPECT_EQ(g->inputs[0].shape, (Shape{-1, 3, -1, 8}));
  EXPECT_EQ(g->inputs[0].dtype, DataType::kFloat32);
  EXPECT_EQ(g->outputs[0].shape, (Shape{-1, 3, 8, 8}));
}

TEST(OnnxImporterTest, UnsupportedInputTypeIsUnimplemented) {
  OnnxBuilder b(13);
  b.Input("strings_in", {2}, onnx::TensorProto::STRING)
      .Node("Identity", {"strings_in"}, {"y"})
      .Output("y");
  absl::StatusOr<Graph> g = test::ImportBuilt(b);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(g.status().message(), HasSubstr("'strings_in'"));
}

}  // namespace
}  // namespace qs
