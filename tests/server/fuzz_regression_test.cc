// Regression tests for requests found by fuzzing (tests/fuzz/fuzz_predict,
// tests/fuzz/fuzz_model_infer; docs/RELIABILITY.md): each was a crash or
// undefined behaviour, and must be a clean answer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/kserve_codec.h"
#include "server/tensor_codec.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;

// Was: memcpy from the empty repeated field's null data() (UBSan
// nonnull-attribute) for a tensor with a 0 dim.
TEST(FuzzRegressionTest, PredictTensorWithZeroRowsDecodes) {
  for (v1::DataType dtype : {v1::FP32, v1::INT64, v1::FP64, v1::INT32, v1::UINT8, v1::BOOL}) {
    v1::Tensor wire;
    wire.set_datatype(dtype);
    for (int64_t d : {0, 1, 28, 28}) wire.add_shape(d);
    auto t = DecodeTensor(wire, "inputs[0]", DecodeLimits());
    ASSERT_TRUE(t.ok()) << v1::DataType_Name(dtype) << ": " << t.status();
    EXPECT_EQ(t->shape(), (Shape{0, 1, 28, 28}));
    EXPECT_EQ(t->num_elements(), 0);
  }
}

TEST(FuzzRegressionTest, KServeInputWithZeroRowsDecodes) {
  for (const char* datatype : {"FP32", "INT64", "FP64", "INT32", "UINT8", "INT8", "BOOL"}) {
    inference::ModelInferRequest::InferInputTensor in;
    in.set_datatype(datatype);
    for (int64_t d : {0, 1, 28, 28}) in.add_shape(d);
    auto typed = DecodeKServeInput(in, nullptr, "inputs[0]", "raw_input_contents[0]",
                                   DecodeLimits());
    ASSERT_TRUE(typed.ok()) << datatype << ": " << typed.status();
    EXPECT_EQ(typed->num_elements(), 0);
    const std::string empty;
    auto raw = DecodeKServeInput(in, &empty, "inputs[0]", "raw_input_contents[0]",
                                 DecodeLimits());
    ASSERT_TRUE(raw.ok()) << datatype << ": " << raw.status();
    EXPECT_EQ(raw->num_elements(), 0);
  }
}

// Raw bool bytes other than 0/1 (any nonzero byte is true on the wire) are
// decoded as 1: kept as is, reading them as C++ bool is undefined behaviour
// (the same bug fuzz_onnx_import found in model initializers).
TEST(FuzzRegressionTest, RawBoolBytesDecodeToZeroOrOne) {
  const std::string raw("\x80\x00\xff", 3);
  v1::Tensor wire;
  wire.set_datatype(v1::BOOL);
  wire.add_shape(3);
  wire.set_raw_data(raw);
  auto predict = DecodeTensor(wire, "inputs[0]", DecodeLimits());
  ASSERT_TRUE(predict.ok()) << predict.status();
  inference::ModelInferRequest::InferInputTensor in;
  in.set_datatype("BOOL");
  in.add_shape(3);
  auto kserve = DecodeKServeInput(in, &raw, "inputs[0]", "raw_input_contents[0]", DecodeLimits());
  ASSERT_TRUE(kserve.ok()) << kserve.status();
  for (const Tensor* t : {&*predict, &*kserve}) {
    const auto* bytes = static_cast<const unsigned char*>(t->raw_data());
    EXPECT_EQ(bytes[0], 1);
    EXPECT_EQ(bytes[1], 0);
    EXPECT_EQ(bytes[2], 1);
  }
}

}  // namespace
}  // namespace qs
