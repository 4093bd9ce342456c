// The real server over real gRPC on a free port, called as a KServe v2 /
// Open Inference Protocol client would: liveness, readiness, metadata,
// ModelInfer with typed and raw tensors, and the error statuses.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstring>

#include "engine/data/npy.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "server/quant_server.h"

namespace qs {
namespace {

using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using testing::ElementsAre;
using testing::HasSubstr;

const std::string kModels = QS_SOURCE_DIR "/models";

ServerConfig TestConfig() {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "127.0.0.1:0";
  ModelConfig model;
  model.name = "fmnist_cnn";
  model.path = kModels + "/fmnist_cnn.onnx";
  model.default_variant = "fp32";
  model.variants.push_back(VariantConfig{"fp32"});
  config.models.push_back(model);
  return config;
}

class KServeTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = QuantServer::Start(TestConfig());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    // Live but not ready while the models are built.
    inference::ServerLiveResponse live;
    inference::ServerReadyResponse ready;
    grpc::ClientContext c1, c2;
    ASSERT_TRUE(Stub()->ServerLive(&c1, {}, &live).ok());
    EXPECT_TRUE(live.live());
    ASSERT_TRUE(Stub()->ServerReady(&c2, {}, &ready).ok());
    EXPECT_FALSE(ready.ready());
    ASSERT_TRUE(server_->LoadModels().ok());
  }
  static void TearDownTestSuite() {
    server_->Shutdown(std::chrono::milliseconds(100));
    delete server_;
    channel_.reset();
  }
  static std::unique_ptr<GRPCInferenceService::Stub> Stub() {
    return GRPCInferenceService::NewStub(channel_);
  }
  static const Tensor& Images() {
    static const Tensor images = *ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
    return images;
  }
  static ModelInferRequest TypedRequest(int batch) {
    ModelInferRequest req;
    req.set_model_name("fmnist_cnn");
    auto* in = req.add_inputs();
    in->set_name("input");
    in->set_datatype("FP32");
    for (int64_t d : {int64_t{batch}, int64_t{1}, int64_t{28}, int64_t{28}}) in->add_shape(d);
    const float* data = Images().data<float>();
    in->mutable_contents()->mutable_fp32_contents()->Add(data, data + batch * 784);
    return req;
  }
  static ModelInferRequest RawRequest(int batch) {
    ModelInferRequest req = TypedRequest(batch);
    req.mutable_inputs(0)->clear_contents();
    req.add_raw_input_contents(
        std::string(static_cast<const char*>(Images().raw_data()), batch * 784 * 4));
    return req;
  }
  static grpc::Status Infer(const ModelInferRequest& req, ModelInferResponse* resp) {
    grpc::ClientContext ctx;
    return Stub()->ModelInfer(&ctx, req, resp);
  }
  static bool ModelReady(const std::string& name, const std::string& version) {
    inference::ModelReadyRequest req;
    req.set_name(name);
    req.set_version(version);
    inference::ModelReadyResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(Stub()->ModelReady(&ctx, req, &resp).ok());
    return resp.ready();
  }
  // Infer must fail with `code` and a message containing `substr`.
  static void ExpectError(const ModelInferRequest& req, grpc::StatusCode code,
                          const std::string& substr) {
    ModelInferResponse resp;
    grpc::Status s = Infer(req, &resp);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(substr));
  }

  static QuantServer* server_;
  static std::shared_ptr<grpc::Channel> channel_;
};

QuantServer* KServeTest::server_ = nullptr;
std::shared_ptr<grpc::Channel> KServeTest::channel_;

TEST_F(KServeTest, LiveAndReadyAfterLoad) {
  inference::ServerLiveResponse live;
  inference::ServerReadyResponse ready;
  grpc::ClientContext c1, c2;
  ASSERT_TRUE(Stub()->ServerLive(&c1, {}, &live).ok());
  ASSERT_TRUE(Stub()->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(live.live());
  EXPECT_TRUE(ready.ready());
}

TEST_F(KServeTest, ModelReadyByNameAndVersion) {
  EXPECT_TRUE(ModelReady("fmnist_cnn", ""));
  EXPECT_TRUE(ModelReady("fmnist_cnn", "fp32"));
  EXPECT_FALSE(ModelReady("fmnist_cnn", "int3"));
  EXPECT_FALSE(ModelReady("nope", ""));
}

TEST_F(KServeTest, ServerMetadata) {
  inference::ServerMetadataResponse meta;
  grpc::ClientContext ctx;
  ASSERT_TRUE(Stub()->ServerMetadata(&ctx, {}, &meta).ok());
  EXPECT_EQ(meta.name(), "quantserve");
  EXPECT_FALSE(meta.version().empty());
}

TEST_F(KServeTest, ModelMetadataListsVersionsAndTensors) {
  inference::ModelMetadataRequest req;
  req.set_name("fmnist_cnn");
  inference::ModelMetadataResponse meta;
  grpc::ClientContext ctx;
  ASSERT_TRUE(Stub()->ModelMetadata(&ctx, req, &meta).ok());
  EXPECT_EQ(meta.name(), "fmnist_cnn");
  EXPECT_THAT(meta.versions(), ElementsAre("fp32"));
  EXPECT_EQ(meta.platform(), "quantserve_onednn");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).name(), "input");
  EXPECT_EQ(meta.inputs(0).datatype(), "FP32");
  EXPECT_THAT(meta.inputs(0).shape(), ElementsAre(-1, 1, 28, 28));
  ASSERT_EQ(meta.outputs_size(), 1);
  EXPECT_EQ(meta.outputs(0).name(), "logits");
  EXPECT_EQ(meta.outputs(0).datatype(), "FP32");

  req.set_version("int3");
  grpc::ClientContext ctx2;
  grpc::Status s = Stub()->ModelMetadata(&ctx2, req, &meta);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("version: 'int3'"));
  EXPECT_THAT(s.error_message(), HasSubstr("versions: 'fp32'"));

  req.set_name("nope");
  grpc::ClientContext ctx3;
  s = Stub()->ModelMetadata(&ctx3, req, &meta);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("'nope'"));
  EXPECT_THAT(s.error_message(), HasSubstr("models: 'fmnist_cnn'"));
}

TEST_F(KServeTest, InferTypedContentsMatchesPyTorch) {
  auto expected = ReadNpy(kModels + "/fmnist_cnn_first16_logits.npy");
  ASSERT_TRUE(expected.ok());
  ModelInferRequest req = TypedRequest(2);
  req.set_id("req-7");
  ModelInferResponse resp;
  grpc::Status s = Infer(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.model_name(), "fmnist_cnn");
  EXPECT_EQ(resp.model_version(), "fp32");
  EXPECT_EQ(resp.id(), "req-7");
  EXPECT_EQ(resp.raw_output_contents_size(), 0);
  ASSERT_EQ(resp.outputs_size(), 1);
  const auto& out = resp.outputs(0);
  EXPECT_EQ(out.name(), "logits");
  EXPECT_EQ(out.datatype(), "FP32");
  EXPECT_THAT(out.shape(), ElementsAre(2, 10));
  ASSERT_EQ(out.contents().fp32_contents_size(), 20);
  for (int i = 0; i < 20; ++i) {
    EXPECT_NEAR(out.contents().fp32_contents(i), expected->data<float>()[i], 1e-3);
  }
}

TEST_F(KServeTest, InferRawContentsReturnsRawOutputs) {
  auto expected = ReadNpy(kModels + "/fmnist_cnn_first16_logits.npy");
  ASSERT_TRUE(expected.ok());
  ModelInferRequest req = RawRequest(2);
  req.set_model_version("fp32");
  ModelInferResponse resp;
  grpc::Status s = Infer(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_FALSE(resp.outputs(0).has_contents());
  EXPECT_THAT(resp.outputs(0).shape(), ElementsAre(2, 10));
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  ASSERT_EQ(resp.raw_output_contents(0).size(), 20 * sizeof(float));
  float logits[20];
  std::memcpy(logits, resp.raw_output_contents(0).data(), sizeof(logits));
  for (int i = 0; i < 20; ++i) EXPECT_NEAR(logits[i], expected->data<float>()[i], 1e-3);
}

TEST_F(KServeTest, RequestedOutputsFilterByName) {
  ModelInferRequest req = TypedRequest(1);
  req.add_outputs()->set_name("logits");
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(req, &resp).ok());
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "logits");

  req.add_outputs()->set_name("probabilities");
  ExpectError(req, grpc::StatusCode::INVALID_ARGUMENT, "outputs[1]: 'probabilities'");
}

TEST_F(KServeTest, UnknownModelOrVersionIsNotFound) {
  ModelInferRequest req = TypedRequest(1);
  req.set_model_name("nope");
  ExpectError(req, grpc::StatusCode::NOT_FOUND, "model_name: model 'nope'");
  ExpectError(req, grpc::StatusCode::NOT_FOUND, "models: 'fmnist_cnn'");

  req = TypedRequest(1);
  req.set_model_version("int3");
  ExpectError(req, grpc::StatusCode::NOT_FOUND, "model_version: 'int3'");
  ExpectError(req, grpc::StatusCode::NOT_FOUND, "versions: 'fp32'");
}

TEST_F(KServeTest, BadInputsNameTheField) {
  const auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  ModelInferRequest req = TypedRequest(1);
  req.mutable_inputs(0)->set_datatype("FP16");
  ExpectError(req, kInvalid, "inputs[0] ('input').datatype: 'FP16' is not a supported");

  req = TypedRequest(1);  // values in fp32_contents, datatype says INT64
  req.mutable_inputs(0)->set_datatype("INT64");
  ExpectError(req, kInvalid, "inputs[0] ('input'): values are in a contents field");

  req = TypedRequest(1);  // well-formed INT64 tensor, but the model takes FP32
  req.mutable_inputs(0)->set_datatype("INT64");
  req.mutable_inputs(0)->mutable_contents()->clear_fp32_contents();
  for (int i = 0; i < 784; ++i) req.mutable_inputs(0)->mutable_contents()->add_int64_contents(0);
  ExpectError(req, kInvalid, "inputs[0] ('input').datatype: INT64, but the model expects FP32");

  req = TypedRequest(1);  // 784 values for 756 elements
  req.mutable_inputs(0)->set_shape(2, 27);
  ExpectError(req, kInvalid, "inputs[0] ('input'): 784 values given, but shape [1,1,27,28]");

  req = TypedRequest(1);  // right element count, wrong shape for the model
  req.mutable_inputs(0)->set_shape(1, 28);
  req.mutable_inputs(0)->set_shape(3, 1);
  ExpectError(req, kInvalid, "inputs[0] ('input').shape: [1,28,28,1], but the model expects");

  req = TypedRequest(1);
  req.mutable_inputs(0)->set_shape(0, -1);
  ExpectError(req, kInvalid, "inputs[0] ('input').shape[0]: negative dimension");

  req = TypedRequest(1);
  req.mutable_inputs(0)->set_name("image");
  ExpectError(req, kInvalid, "inputs[0] ('image'): 'image' is not an input");

  req = TypedRequest(1);
  req.mutable_inputs(0)->set_shape(0, int64_t{1} << 40);
  ExpectError(req, grpc::StatusCode::RESOURCE_EXHAUSTED, "inputs[0] ('input').shape");
}

TEST_F(KServeTest, BadRawInputsNameTheField) {
  const auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  ModelInferRequest req = RawRequest(1);
  req.set_raw_input_contents(0, "1234");
  ExpectError(req, kInvalid, "inputs[0] ('input'): raw_input_contents[0] has 4 bytes");

  req = TypedRequest(1);  // typed contents and a raw entry for the same input
  req.add_raw_input_contents(RawRequest(1).raw_input_contents(0));
  ExpectError(req, kInvalid, "inputs[0] ('input'): data is given both in contents and in");

  req = RawRequest(1);  // a second input without a raw entry
  *req.add_inputs() = TypedRequest(1).inputs(0);
  ExpectError(req, kInvalid, "inputs[1] ('input'): has no raw_input_contents[1]");

  req = RawRequest(1);
  req.add_raw_input_contents("extra");
  ExpectError(req, kInvalid, "raw_input_contents: 2 entries, but the request has 1 inputs");

  // The server keeps serving after every bad request.
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(RawRequest(2), &resp).ok());
}

}  // namespace
}  // namespace qs
