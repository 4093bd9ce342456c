// The Prometheus endpoint of a real server: requests over both gRPC APIs,
// then GET /metrics over a plain socket and check what a scraper would see.
// One server (and so one prometheus::Exposer, whose destructor blocks for a
// second or two) for the whole binary.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "engine/data/npy.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"
#include "tests/metrics/scrape.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;
using testing::HasSubstr;

const std::string kModels = QS_SOURCE_DIR "/models";
const std::string kData = "/usr/share/datasets/fashion-mnist";
constexpr char kMissing[] = "no-such-thing-7f3a";  // must never become a label value

bool HaveDataset() { return std::filesystem::exists(kData + "/train-images-idx3-ubyte.gz"); }

// fmnist_cnn: fp32 (+ w8a8 when the dataset is installed), batched;
// fmnist_unbatched: fp32 without batching; fmnist_slow: a 1 s batching delay.
ServerConfig TestConfig() {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "127.0.0.1:0";
  ModelConfig model;
  model.name = "fmnist_cnn";
  model.path = kModels + "/fmnist_cnn.onnx";
  model.default_variant = "fp32";
  model.variants.push_back(VariantConfig{"fp32"});
  model.batching.max_batch_size = 8;
  model.batching.max_queue_delay_us = 2000;
  ModelConfig unbatched = model;
  unbatched.name = "fmnist_unbatched";
  unbatched.batching = BatchingConfig{};
  // A lone request waits a whole second for its batch to fill.
  ModelConfig slow = model;
  slow.name = "fmnist_slow";
  slow.batching.max_batch_size = 256;
  slow.batching.max_queue_delay_us = 1000000;
  if (HaveDataset()) {
    DatasetConfig eval;
    eval.inputs = kData + "/t10k-images-idx3-ubyte.gz";
    eval.labels = kData + "/t10k-labels-idx1-ubyte.gz";
    eval.limit = 500;
    DatasetConfig calib;
    calib.inputs = kData + "/train-images-idx3-ubyte.gz";
    calib.limit = 200;
    model.evaluation = eval;
    model.calibration = calib;
    VariantConfig w8a8{"w8a8"};
    w8a8.weights = WeightQuantConfig{};          // linear, 8 bits
    w8a8.activations = ActivationQuantConfig{};  // 8 bits, minmax
    model.variants.push_back(w8a8);
  }
  config.models = {model, unbatched, slow};
  return config;
}

class MetricsTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = QuantServer::Start(TestConfig());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    ASSERT_TRUE(server_->LoadModels().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
  }
  static void TearDownTestSuite() {
    server_->Shutdown(std::chrono::milliseconds(100));
    delete server_;
    channel_.reset();
  }

  static v1::PredictRequest Request(const std::string& model, int batch,
                                    const std::string& variant = "") {
    static const Tensor images = *ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
    v1::PredictRequest req;
    req.set_model(model);
    req.set_variant(variant);
    v1::Tensor* t = req.add_inputs();
    t->set_name("input");
    t->set_datatype(v1::FP32);
    for (int64_t d : {int64_t{batch}, int64_t{1}, int64_t{28}, int64_t{28}}) t->add_shape(d);
    t->mutable_float_data()->Add(images.data<float>(), images.data<float>() + batch * 784);
    return req;
  }
  static grpc::StatusCode Predict(const v1::PredictRequest& req) {
    grpc::ClientContext ctx;
    v1::PredictResponse resp;
    return v1::InferenceService::NewStub(channel_)->Predict(&ctx, req, &resp).error_code();
  }
  static grpc::StatusCode Infer(const std::string& model, const std::string& output = "") {
    v1::PredictRequest p = Request("x", 1);
    inference::ModelInferRequest req;
    req.set_model_name(model);
    auto* in = req.add_inputs();
    in->set_name("input");
    in->set_datatype("FP32");
    for (int64_t d : {1, 1, 28, 28}) in->add_shape(d);
    *in->mutable_contents()->mutable_fp32_contents() = p.inputs(0).float_data();
    if (!output.empty()) req.add_outputs()->set_name(output);
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    return inference::GRPCInferenceService::NewStub(channel_)
        ->ModelInfer(&ctx, req, &resp)
        .error_code();
  }
  static Scrape Get() {
    HttpResponse r = HttpGet(server_->metrics_port(), "/metrics");
    EXPECT_EQ(r.status, 200) << r.error;
    return Scrape(r.body);
  }

  static QuantServer* server_;
  static std::shared_ptr<grpc::Channel> channel_;
};

QuantServer* MetricsTest::server_ = nullptr;
std::shared_ptr<grpc::Channel> MetricsTest::channel_;

const Labels kFp32 = {{"model", "fmnist_cnn"}, {"variant", "fp32"}, {"bits", "32"}};
const Labels kUnbatched = {{"model", "fmnist_unbatched"}, {"variant", "fp32"}, {"bits", "32"}};
const Labels kW8a8 = {{"model", "fmnist_cnn"}, {"variant", "w8a8"}, {"bits", "8"}};
const Labels kUnknown = {{"model", "unknown"}, {"variant", "unknown"}, {"bits", "unknown"}};

Labels With(Labels labels, const std::string& key, const std::string& value) {
  labels[key] = value;
  return labels;
}

TEST_F(MetricsTest, ServesOnItsOwnFreePort) {
  EXPECT_GT(server_->metrics_port(), 0);
  EXPECT_NE(server_->metrics_port(), server_->grpc_port());
  EXPECT_EQ(HttpGet(server_->metrics_port(), "/metrics").status, 200);
}

TEST_F(MetricsTest, RequestsAreCountedPerCodeOnBothApis) {
  const Scrape before = Get();
  EXPECT_EQ(Predict(Request("fmnist_cnn", 1)), grpc::StatusCode::OK);
  EXPECT_EQ(Predict(Request("fmnist_cnn", 2)), grpc::StatusCode::OK);
  v1::PredictRequest bad = Request("fmnist_cnn", 1);
  bad.add_output_names("nope");
  EXPECT_EQ(Predict(bad), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Infer("fmnist_cnn"), grpc::StatusCode::OK);
  EXPECT_EQ(Infer("fmnist_cnn", "nope"), grpc::StatusCode::INVALID_ARGUMENT);
  const Scrape after = Get();
  const std::string name = "quantserve_requests_total";
  EXPECT_EQ(
      after.Value(name, With(kFp32, "code", "OK")) - before.Value(name, With(kFp32, "code", "OK")),
      3);
  EXPECT_EQ(after.Value(name, With(kFp32, "code", "INVALID_ARGUMENT")) -
                before.Value(name, With(kFp32, "code", "INVALID_ARGUMENT")),
            2);
  // Every code exists from the start, so error rates are 0, not absent.
  EXPECT_EQ(after.Value(name, With(kFp32, "code", "DATA_LOSS")), 0);
  EXPECT_EQ(after.Count(name, kFp32), 17);
}

TEST_F(MetricsTest, UnknownModelsAndVariantsAreCountedAsUnknown) {
  const Scrape before = Get();
  EXPECT_EQ(Predict(Request(kMissing, 1)), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Predict(Request("fmnist_cnn", 1, kMissing)), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Infer(kMissing), grpc::StatusCode::NOT_FOUND);
  HttpResponse raw = HttpGet(server_->metrics_port(), "/metrics");
  const Scrape after(raw.body);
  const Labels not_found = With(kUnknown, "code", "NOT_FOUND");
  EXPECT_EQ(after.Value("quantserve_requests_total", not_found) -
                before.Value("quantserve_requests_total", not_found),
            3);
  EXPECT_THAT(raw.body, testing::Not(HasSubstr(kMissing)));
  for (const Sample& s : after.samples()) {
    for (const auto& [key, value] : s.labels) EXPECT_NE(value, kMissing) << s.name;
  }
}

TEST_F(MetricsTest, LatencyHistogramsPerVariant) {
  const Scrape before = Get();
  for (int batch : {1, 4, 3})
    EXPECT_EQ(Predict(Request("fmnist_cnn", batch)), grpc::StatusCode::OK);
  const Scrape after = Get();
  const std::string duration = "quantserve_request_duration_seconds";
  const double count = after.Value(duration + "_count", kFp32);
  EXPECT_GE(count - before.Value(duration + "_count", kFp32), 3);
  EXPECT_GT(after.Value(duration + "_sum", kFp32), before.Value(duration + "_sum", kFp32));
  EXPECT_EQ(after.Count(duration + "_bucket", kFp32), 17);  // 100 µs .. 10 s, and +Inf
  EXPECT_EQ(after.Value(duration + "_bucket", With(kFp32, "le", "+Inf")), count);
  for (const std::string name :
       {"quantserve_queue_duration_seconds", "quantserve_compute_duration_seconds"}) {
    EXPECT_GE(after.Value(name + "_count", kFp32) - before.Value(name + "_count", kFp32), 1)
        << name;
    EXPECT_GT(after.Value(name + "_sum", kFp32), before.Value(name + "_sum", kFp32)) << name;
    EXPECT_EQ(after.Count(name + "_bucket", kFp32), 17) << name;
  }
  // Every row ran in some batch.
  const std::string rows = "quantserve_batch_size";
  EXPECT_EQ(after.Value(rows + "_sum", kFp32) - before.Value(rows + "_sum", kFp32), 8);
  EXPECT_EQ(after.Count(rows + "_bucket", kFp32), 14);  // 1, 2, ..., 4096, +Inf
  EXPECT_EQ(after.Value(rows + "_bucket", With(kFp32, "le", "4096")),
            after.Value(rows + "_count", kFp32));
}

// Without batching, every request is a batch of its own, run by the
// model's worker (its queue time is the wait for that worker).
TEST_F(MetricsTest, UnbatchedRunsAreBatchesOfOne) {
  const Scrape before = Get();
  EXPECT_EQ(Predict(Request("fmnist_unbatched", 3)), grpc::StatusCode::OK);
  const Scrape after = Get();
  auto delta = [&](const std::string& name) {
    return after.Value(name, kUnbatched) - before.Value(name, kUnbatched);
  };
  EXPECT_EQ(delta("quantserve_batch_size_count"), 1);
  EXPECT_EQ(delta("quantserve_batch_size_sum"), 3);
  EXPECT_EQ(delta("quantserve_compute_duration_seconds_count"), 1);
  EXPECT_GT(delta("quantserve_compute_duration_seconds_sum"), 0);
  EXPECT_EQ(delta("quantserve_queue_duration_seconds_count"), 1);
  EXPECT_LT(delta("quantserve_queue_duration_seconds_sum"), 1.0);  // no batching delay
}

// A call whose deadline expires while the server works on it: gRPC marks it
// cancelled (ServerContext::IsCancelled), but it is counted as what the
// client saw, DEADLINE_EXCEEDED, not as a cancellation by the client. Found
// by the soak (docs/RELIABILITY.md#soak), where over a third of the expired
// calls that reached a handler were counted as CANCELLED.
TEST_F(MetricsTest, ExpiredDeadlinesAreCountedAsDeadlineExceededNotCancelled) {
  // 1024 rows unbatched: the run takes far longer than the 50 ms deadline.
  v1::PredictRequest big = Request("fmnist_unbatched", 16);
  v1::Tensor* t = big.mutable_inputs(0);
  t->set_shape(0, 1024);
  const auto images = t->float_data();
  for (int i = 1; i < 1024 / 16; ++i) t->mutable_float_data()->Add(images.begin(), images.end());
  inference::ModelInferRequest infer;
  infer.set_model_name("fmnist_unbatched");
  auto* in = infer.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  for (int64_t d : t->shape()) in->add_shape(d);
  *in->mutable_contents()->mutable_fp32_contents() = t->float_data();

  const std::string name = "quantserve_requests_total";
  for (bool kserve : {false, true}) {
    const Scrape before = Get();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(50));
    grpc::Status status;
    if (kserve) {
      inference::ModelInferResponse resp;
      status = inference::GRPCInferenceService::NewStub(channel_)->ModelInfer(&ctx, infer, &resp);
    } else {
      v1::PredictResponse resp;
      status = v1::InferenceService::NewStub(channel_)->Predict(&ctx, big, &resp);
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << kserve;
    // The handler counts the call when it is done with it, after the client
    // gave up.
    auto delta = [&](const Scrape& after, const std::string& code) {
      return after.Value(name, With(kUnbatched, "code", code)) -
             before.Value(name, With(kUnbatched, "code", code));
    };
    Scrape after = Get();
    for (int i = 0; i < 200 && delta(after, "DEADLINE_EXCEEDED") + delta(after, "CANCELLED") +
                                       delta(after, "OK") < 1;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      after = Get();
    }
    EXPECT_EQ(delta(after, "DEADLINE_EXCEEDED"), 1) << (kserve ? "ModelInfer" : "Predict");
    EXPECT_EQ(delta(after, "CANCELLED"), 0) << (kserve ? "ModelInfer" : "Predict");
  }
}

// A queued call holds no thread (gRPC callback API), so nobody waits on it:
// a client's cancellation or an expired deadline must take the request out
// of the queue and answer the call at once, not when its batch would run.
TEST_F(MetricsTest, CallsGivenUpWhileQueuedLeaveTheQueueAtOnce) {
  const Labels slow = {{"model", "fmnist_slow"}, {"variant", "fp32"}, {"bits", "32"}};
  const std::string name = "quantserve_requests_total";
  const Scrape before = Get();
  auto stub = v1::InferenceService::NewStub(channel_);
  {
    grpc::ClientContext ctx;
    v1::PredictResponse resp;
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ctx.TryCancel();
    });
    EXPECT_EQ(stub->Predict(&ctx, Request("fmnist_slow", 1), &resp).error_code(),
              grpc::StatusCode::CANCELLED);
    canceller.join();
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    v1::PredictResponse resp;
    EXPECT_EQ(stub->Predict(&ctx, Request("fmnist_slow", 1), &resp).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // Both were answered long before the 1 s batching delay of either.
  const auto asked = std::chrono::steady_clock::now();
  auto delta = [&](const Scrape& after, const std::string& metric, const Labels& labels) {
    return after.Value(metric, labels) - before.Value(metric, labels);
  };
  Scrape after = Get();
  while (delta(after, name, With(slow, "code", "CANCELLED")) +
                 delta(after, name, With(slow, "code", "DEADLINE_EXCEEDED")) < 2 &&
         std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(600)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = Get();
  }
  EXPECT_EQ(delta(after, name, With(slow, "code", "CANCELLED")), 1);
  EXPECT_EQ(delta(after, name, With(slow, "code", "DEADLINE_EXCEEDED")), 1);
  EXPECT_EQ(after.Value("quantserve_inflight_requests", slow), 0);
  // And neither ever runs: past the delay, the model has run no batch.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(delta(Get(), "quantserve_batch_size_count", slow), 0);
}

// The client cancels a long call (4096 rows unbatched, ~0.2 s of compute)
// once the server has it (in flight: decoded, queued or running — under
// ASan, sending the 12.8 MB request alone can outlast a fixed delay, and a
// call cancelled before it reaches the handler is not counted at all):
// whichever, it is counted once, as CANCELLED, and leaves no call in flight.
TEST_F(MetricsTest, ACallCancelledWhileRunningIsCountedOnce) {
  v1::PredictRequest big = Request("fmnist_unbatched", 16);
  v1::Tensor* t = big.mutable_inputs(0);
  t->set_shape(0, 4096);
  const auto images = t->float_data();
  for (int i = 1; i < 4096 / 16; ++i) t->mutable_float_data()->Add(images.begin(), images.end());
  const std::string name = "quantserve_requests_total";
  const Scrape before = Get();
  grpc::ClientContext ctx;
  v1::PredictResponse resp;
  std::thread canceller([&] {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (Get().Value("quantserve_inflight_requests", kUnbatched) < 1 &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ctx.TryCancel();
  });
  EXPECT_EQ(v1::InferenceService::NewStub(channel_)->Predict(&ctx, big, &resp).error_code(),
            grpc::StatusCode::CANCELLED);
  canceller.join();
  auto delta = [&](const Scrape& after, const std::string& code) {
    return after.Value(name, With(kUnbatched, "code", code)) -
           before.Value(name, With(kUnbatched, "code", code));
  };
  Scrape after = Get();
  for (int i = 0; i < 100 && after.Value("quantserve_inflight_requests", kUnbatched) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = Get();
  }
  EXPECT_EQ(after.Value("quantserve_inflight_requests", kUnbatched), 0);
  EXPECT_EQ(delta(after, "CANCELLED"), 1);
  EXPECT_EQ(delta(after, "OK"), 0);
  EXPECT_EQ(delta(after, "DEADLINE_EXCEEDED"), 0);
}

TEST_F(MetricsTest, InflightIsBackToZero) {
  EXPECT_EQ(Predict(Request("fmnist_cnn", 1)), grpc::StatusCode::OK);
  const Scrape s = Get();
  EXPECT_EQ(s.Value("quantserve_inflight_requests", kFp32), 0);
  EXPECT_EQ(s.Count("quantserve_inflight_requests", kUnknown), 0);
}

TEST_F(MetricsTest, LoadTimeGaugesPerVariant) {
  const Scrape s = Get();
  const auto model = server_->registry().Find("fmnist_cnn");
  ASSERT_NE(model, nullptr);
  const VariantReport& fp32 = model->built.Find("fp32")->report;
  EXPECT_EQ(s.Value("quantserve_variant_weight_bytes", kFp32), fp32.weight_bytes);
  EXPECT_GT(fp32.weight_bytes, 400000);
  EXPECT_GE(s.Value("quantserve_variant_build_seconds", kFp32), 0);
  EXPECT_EQ(s.Count("quantserve_variant_weight_bytes", kUnknown), 0);
  if (!HaveDataset()) {
    EXPECT_EQ(s.Count("quantserve_variant_accuracy", {}), 0) << "nothing was evaluated";
    GTEST_SKIP() << kData << " is not installed: no w8a8 variant, no accuracy";
  }
  const VariantReport& w8a8 = model->built.Find("w8a8")->report;
  EXPECT_EQ(s.Value("quantserve_variant_weight_bytes", kW8a8), w8a8.weight_bytes);
  EXPECT_LT(w8a8.weight_bytes, fp32.weight_bytes / 3);
  EXPECT_NEAR(s.Value("quantserve_variant_accuracy", kFp32), fp32.accuracy, 1e-9);
  EXPECT_NEAR(s.Value("quantserve_variant_accuracy", kW8a8), w8a8.accuracy, 1e-9);
  EXPECT_GT(w8a8.accuracy, 0.8);
  EXPECT_LE(w8a8.accuracy, 1.0);
  EXPECT_EQ(s.Value("quantserve_variant_accuracy_drop", kFp32), 0);
  EXPECT_NEAR(s.Value("quantserve_variant_accuracy_drop", kW8a8), fp32.accuracy - w8a8.accuracy,
              1e-9);
  EXPECT_EQ(s.Value("quantserve_variant_top1_agreement", kFp32), 1);
  EXPECT_NEAR(s.Value("quantserve_variant_top1_agreement", kW8a8), w8a8.top1_agreement, 1e-9);
  EXPECT_GT(w8a8.top1_agreement, 0.9);
  // The unbatched model was not evaluated: no accuracy series for it.
  EXPECT_EQ(s.Count("quantserve_variant_accuracy", kUnbatched), 0);
}

TEST_F(MetricsTest, QuantizedRequestsCarryTheirBits) {
  if (!HaveDataset()) GTEST_SKIP() << kData << " is not installed: no w8a8 variant";
  const Labels ok = With(kW8a8, "code", "OK");
  const double before = Get().Value("quantserve_requests_total", ok);
  EXPECT_EQ(Predict(Request("fmnist_cnn", 2, "w8a8")), grpc::StatusCode::OK);
  EXPECT_EQ(Get().Value("quantserve_requests_total", ok) - before, 1);
}

TEST_F(MetricsTest, TypesFollowPrometheusConventions) {
  const std::string body = HttpGet(server_->metrics_port(), "/metrics").body;
  for (const char* line :
       {"# TYPE quantserve_requests_total counter",
        "# TYPE quantserve_request_duration_seconds histogram",
        "# TYPE quantserve_queue_duration_seconds histogram",
        "# TYPE quantserve_compute_duration_seconds histogram",
        "# TYPE quantserve_batch_size histogram", "# TYPE quantserve_inflight_requests gauge",
        "# TYPE quantserve_variant_weight_bytes gauge",
        "# TYPE quantserve_variant_build_seconds gauge", "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge"}) {
    EXPECT_THAT(body, HasSubstr(line));
  }
  // Histograms, not summaries (prometheus-cpp's own exposer_* metrics
  // include a summary; those are not ours).
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE quantserve_", 0) == 0 || line.rfind("# TYPE process_", 0) == 0) {
      EXPECT_THAT(line, testing::Not(testing::EndsWith(" summary")));
    }
  }
}

TEST_F(MetricsTest, ProcessMetricsAreRefreshedAtScrape) {
  const Scrape s = Get();
  EXPECT_GT(s.Value("process_cpu_seconds_total", {}), 0);
  EXPECT_GT(s.Value("process_resident_memory_bytes", {}), 1 << 20);
  EXPECT_GE(s.Value("process_virtual_memory_bytes", {}),
            s.Value("process_resident_memory_bytes", {}));
  EXPECT_GT(s.Value("process_open_fds", {}), 3);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(s.Value("process_start_time_seconds", {}), now, 3600);
  // Batch-16 fmnist runs have activations above the cache's 256 KiB floor
  // (16 x 32 x 28 x 28 floats): after a few, buffers are reused.
  for (int i = 0; i < 5; ++i) Predict(Request("fmnist_cnn", 16));
  const Scrape after = Get();
  EXPECT_GT(after.Value("quantserve_activation_cache_requests_total", {{"result", "hit"}}), 0);
  EXPECT_GT(after.Value("quantserve_activation_cache_requests_total", {{"result", "miss"}}), 0);
  EXPECT_GE(after.Value("quantserve_activation_cache_idle_bytes", {}), 0);
  // CPU time only grows; burn a little and look again.
  for (int i = 0; i < 20; ++i) Predict(Request("fmnist_cnn", 16));
  EXPECT_GE(Get().Value("process_cpu_seconds_total", {}), s.Value("process_cpu_seconds_total", {}));
}

TEST_F(MetricsTest, BusyMetricsPortFailsStartWithAClearError) {
  ServerConfig config = TestConfig();
  config.server.metrics_address = "127.0.0.1:" + std::to_string(server_->metrics_port());
  auto second = QuantServer::Start(config);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("metrics: cannot listen on " + config.server.metrics_address));
}

}  // namespace
}  // namespace qs
