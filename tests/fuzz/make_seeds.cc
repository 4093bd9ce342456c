// Writes the generated part of the seed corpora (small ONNX models and
// binary Predict / ModelInfer requests) into tests/fuzz/corpus/<target>/.
// The YAML seeds of fuzz_config are written by hand. Run after changing this
// file and commit the result:
//   build-asan/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
// Valid and broken inputs both: the fuzzer starts from every branch they
// reach. Keep each file small (the fuzzers' -max_len follows the largest).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "inference/grpc_predict_v2.pb.h"
#include "quantserve/v1/inference.pb.h"
#include "tests/engine/onnx_builder.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = quantserve::v1;
using qs::Tensor;
using qs::test::OnnxAttr;
using qs::test::OnnxBuilder;
using qs::test::RandomTensor;

fs::path g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

// ---- ONNX models -----------------------------------------------------------

void OnnxSeeds() {
  const std::string t = "fuzz_onnx_import";
  {  // A tiny CNN: the bundled model's ops at toy size.
    OnnxBuilder b(13);
    b.Input("x", {-1, 1, 6, 6})
        .Initializer("w", RandomTensor({2, 1, 3, 3}, 1))
        .Initializer("b", RandomTensor({2}, 2))
        .Node("Conv", {"x", "w", "b"}, {"c"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}})
        .Node("Relu", {"c"}, {"r"})
        .Node("MaxPool", {"r"}, {"p"},
              {{"kernel_shape", std::vector<int64_t>{2, 2}},
               {"strides", std::vector<int64_t>{2, 2}}})
        .Node("Flatten", {"p"}, {"f"})
        .Initializer("fc_w", RandomTensor({3, 18}, 3))
        .Initializer("fc_b", RandomTensor({3}, 4))
        .Node("Gemm", {"f", "fc_w", "fc_b"}, {"g"}, {{"transB", 1}})
        .Node("Softmax", {"g"}, {"y"}, {{"axis", 1}})
        .Output("y");
    Write(t, "cnn.onnx", b.Serialize());
  }
  {  // MatMul + Add + elementwise ops, opset 17.
    OnnxBuilder b(17);
    b.Input("x", {-1, 4})
        .Initializer("w", RandomTensor({4, 3}, 5))
        .Initializer("b", RandomTensor({3}, 6))
        .Node("MatMul", {"x", "w"}, {"m"})
        .Node("Add", {"m", "b"}, {"a"})
        .Node("LeakyRelu", {"a"}, {"l"}, {{"alpha", 0.1f}})
        .Node("Sigmoid", {"l"}, {"s"})
        .Node("Tanh", {"s"}, {"y"})
        .Output("y", {-1, 3});
    Write(t, "mlp.onnx", b.Serialize());
  }
  {  // Constant nodes, Reshape, Transpose, Concat, Mul, Div, Sub, Clip.
    OnnxBuilder b(13);
    b.Input("x", {2, 3})
        .Constant("shape", Tensor::FromVector<int64_t>({2}, {3, 2}))
        .Node("Reshape", {"x", "shape"}, {"r"})
        .Node("Transpose", {"r"}, {"t"}, {{"perm", std::vector<int64_t>{1, 0}}})
        .Node("Concat", {"t", "x"}, {"c"}, {{"axis", 0}})
        .Constant("two", Tensor::FromVector<float>({}, {2.f}))
        .Node("Mul", {"c", "two"}, {"m"})
        .Node("Div", {"m", "two"}, {"d"})
        .Node("Sub", {"d", "x2"}, {"s"})
        .Initializer("x2", RandomTensor({4, 3}, 7))
        .Constant("lo", Tensor::FromVector<float>({}, {-0.5f}))
        .Constant("hi", Tensor::FromVector<float>({}, {0.5f}))
        .Node("Clip", {"s", "lo", "hi"}, {"y"})
        .Output("y");
    Write(t, "shape_ops.onnx", b.Serialize());
  }
  {  // QDQ: QuantizeLinear / DequantizeLinear around a Conv, BatchNorm,
     // AveragePool, GlobalAveragePool, Identity, Dropout.
    OnnxBuilder b(13);
    b.Input("x", {1, 2, 4, 4})
        .Initializer("s", Tensor::FromVector<float>({}, {0.05f}))
        .Initializer("z", Tensor::FromVector<uint8_t>({}, {128}))
        .Node("QuantizeLinear", {"x", "s", "z"}, {"q"})
        .Node("DequantizeLinear", {"q", "s", "z"}, {"dq"})
        .Initializer("w", RandomTensor({2, 2, 1, 1}, 8))
        .Node("Conv", {"dq", "w"}, {"c"})
        .Initializer("scale", RandomTensor({2}, 9, 0.5f, 1.5f))
        .Initializer("bias", RandomTensor({2}, 10))
        .Initializer("mean", RandomTensor({2}, 11))
        .Initializer("var", RandomTensor({2}, 12, 0.5f, 1.5f))
        .Node("BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"bn"})
        .Node("AveragePool", {"bn"}, {"ap"}, {{"kernel_shape", std::vector<int64_t>{2, 2}}})
        .Node("GlobalAveragePool", {"ap"}, {"g"})
        .Node("Identity", {"g"}, {"i"})
        .Node("Dropout", {"i"}, {"y"})
        .Output("y");
    Write(t, "qdq.onnx", b.Serialize());
  }
  {  // Broken: truncated, unsupported op, no opset, dangling input, cycle.
    OnnxBuilder b(13);
    b.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y");
    const std::string ok = b.Serialize();
    Write(t, "relu.onnx", ok);
    Write(t, "truncated.onnx", ok.substr(0, ok.size() / 2));
    Write(t, "empty.onnx", "");
    OnnxBuilder gelu(13);
    gelu.Input("x", {1, 4}).Node("Gelu", {"x"}, {"y"}).Output("y");
    Write(t, "unsupported_op.onnx", gelu.Serialize());
    OnnxBuilder no_opset(0);
    no_opset.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y");
    Write(t, "no_opset.onnx", no_opset.Serialize());
    OnnxBuilder cycle(13);
    cycle.Input("x", {1, 4})
        .Node("Add", {"x", "b"}, {"a"})
        .Node("Relu", {"a"}, {"b"})
        .Node("Relu", {"a"}, {"y"})
        .Output("y");
    Write(t, "cycle.onnx", cycle.Serialize());
    OnnxBuilder bad_init(13);
    Tensor w = RandomTensor({2, 2}, 13);
    onnx::TensorProto proto;
    proto.set_data_type(onnx::TensorProto::FLOAT);
    proto.add_dims(2);
    proto.add_dims(3);  // 6 values needed, 4 given
    proto.set_raw_data(w.raw_data(), w.byte_size());
    bad_init.Input("x", {2, 2}).Initializer("w", proto).Node("MatMul", {"x", "w"}, {"y"}).Output("y");
    Write(t, "bad_initializer.onnx", bad_init.Serialize());
  }
}

// ---- Requests --------------------------------------------------------------

std::vector<float> Image(int rows) {
  std::vector<float> v(static_cast<size_t>(rows) * 784);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 37) % 256) / 255.f;
  return v;
}

std::string Raw(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

v1::PredictRequest Predict(const std::string& model, int rows) {
  v1::PredictRequest req;
  req.set_model(model);
  v1::Tensor* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype(v1::FP32);
  for (int64_t d : {int64_t{rows}, int64_t{1}, int64_t{28}, int64_t{28}}) in->add_shape(d);
  for (float f : Image(rows)) in->add_float_data(f);
  return req;
}

void PredictSeeds() {
  const std::string t = "fuzz_predict";
  auto put = [&](const std::string& name, const v1::PredictRequest& req) {
    Write(t, name, req.SerializeAsString());
  };
  put("fp32_1row.pb", Predict("fmnist", 1));
  {
    v1::PredictRequest req = Predict("fmnist", 1);
    req.set_variant("w8a8");
    req.set_top_k(3);
    req.set_request_id("r1");
    put("w8a8_topk_id.pb", req);
  }
  {
    v1::PredictRequest req = Predict("fmnist_b", 2);
    v1::Tensor* in = req.mutable_inputs(0);
    in->set_raw_data(Raw(Image(2)));
    in->clear_float_data();
    req.set_raw_output(true);
    req.add_output_names("logits");
    put("batched_raw_2rows.pb", req);
  }
  {  // Broken: wrong shape, NaN, unknown model and variant, wrong output
     // name, zero rows, too many rows, wrong dtype, both raw and typed.
    v1::PredictRequest req = Predict("fmnist", 1);
    req.mutable_inputs(0)->set_shape(2, 27);
    put("bad_shape.pb", req);
    req = Predict("fmnist", 1);
    req.mutable_inputs(0)->set_float_data(5, std::numeric_limits<float>::quiet_NaN());
    put("nan.pb", req);
    req = Predict("nope", 1);
    put("unknown_model.pb", req);
    req = Predict("fmnist", 1);
    req.set_variant("w4");
    put("unknown_variant.pb", req);
    req = Predict("fmnist", 1);
    req.add_output_names("probs");
    put("unknown_output.pb", req);
    req = Predict("fmnist", 0);
    put("zero_rows.pb", req);
    req = Predict("fmnist", 0);  // 9 rows of one value each: past max_batch_rows
    req.mutable_inputs(0)->set_shape(0, 9);
    for (int i = 1; i < 4; ++i) req.mutable_inputs(0)->set_shape(i, 1);
    for (int i = 0; i < 9; ++i) req.mutable_inputs(0)->add_float_data(0.5f);
    put("too_many_rows.pb", req);
    req = Predict("fmnist", 1);
    req.mutable_inputs(0)->set_datatype(v1::INT32);
    put("wrong_dtype.pb", req);
    req = Predict("fmnist", 1);
    req.mutable_inputs(0)->set_raw_data("abcd");
    put("raw_and_typed.pb", req);
    req = Predict("fmnist", 1);
    *req.add_inputs() = req.inputs(0);
    put("input_twice.pb", req);
  }
}

inference::ModelInferRequest Infer(const std::string& model, int rows, bool raw) {
  inference::ModelInferRequest req;
  req.set_model_name(model);
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  for (int64_t d : {int64_t{rows}, int64_t{1}, int64_t{28}, int64_t{28}}) in->add_shape(d);
  if (raw) {
    req.add_raw_input_contents(Raw(Image(rows)));
  } else {
    for (float f : Image(rows)) in->mutable_contents()->add_fp32_contents(f);
  }
  return req;
}

void ModelInferSeeds() {
  const std::string t = "fuzz_model_infer";
  auto put = [&](const std::string& name, const inference::ModelInferRequest& req) {
    Write(t, name, req.SerializeAsString());
  };
  put("fp32_1row.pb", Infer("fmnist", 1, false));
  {
    inference::ModelInferRequest req = Infer("fmnist", 1, true);
    req.set_model_version("w8a8");
    req.set_id("r1");
    req.add_outputs()->set_name("logits");
    put("w8a8_raw_id.pb", req);
  }
  put("batched_2rows.pb", Infer("fmnist_b", 2, true));
  {
    inference::ModelInferRequest req = Infer("fmnist", 1, false);
    req.mutable_inputs(0)->set_shape(3, 29);
    put("bad_shape.pb", req);
    req = Infer("fmnist", 1, true);
    req.add_raw_input_contents("x");
    put("extra_raw.pb", req);
    req = Infer("fmnist", 1, false);
    req.mutable_inputs(0)->set_datatype("FP16");
    put("fp16.pb", req);
    req = Infer("fmnist", 1, false);
    req.mutable_inputs(0)->set_datatype("UINT8");
    put("uint8_mismatch.pb", req);
    req = Infer("fmnist", 0, true);
    put("zero_rows.pb", req);
    req = Infer("fmnist", 1, false);
    req.set_model_version("nope");
    put("unknown_version.pb", req);
    req = Infer("fmnist", 1, false);
    req.mutable_inputs(0)->set_name("image");
    put("unknown_input.pb", req);
    req = Infer("fmnist", 1, false);
    req.add_outputs()->set_name("probs");
    put("unknown_output.pb", req);
    req = Infer("fmnist", 1, false);
    req.mutable_inputs(0)->mutable_contents()->set_fp32_contents(
        0, std::numeric_limits<float>::infinity());
    put("inf.pb", req);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  OnnxSeeds();
  PredictSeeds();
  ModelInferSeeds();
  return 0;
}
