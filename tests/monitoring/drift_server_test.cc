// Live drift and Feedback on a real server with real quantized variants:
// gRPC traffic on both APIs, then /metrics scraped directly, checked by
// promtool, and read back through a real Prometheus scraping the server.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/data/idx.h"
#include "engine/data/npy.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "server/quant_server.h"
#include "tests/metrics/scrape.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;
namespace fs = std::filesystem;
using testing::HasSubstr;

const std::string kModels = QS_SOURCE_DIR "/models";
const std::string kData = "/usr/share/datasets/fashion-mnist";

ModelConfig FmnistModel(const std::string& name) {
  ModelConfig model;
  model.name = name;
  model.path = kModels + "/fmnist_cnn.onnx";
  DatasetConfig calib;
  calib.inputs = kData + "/train-images-idx3-ubyte.gz";
  calib.limit = 200;
  model.calibration = calib;
  model.variants.push_back(VariantConfig{"fp32"});
  for (int bits : {8, 2}) {
    VariantConfig v{"w" + std::to_string(bits) + "a8"};
    v.weights = WeightQuantConfig{};
    v.weights->bits = bits;
    v.activations = ActivationQuantConfig{};
    model.variants.push_back(v);
  }
  model.default_variant = "w8a8";
  return model;
}

// "mirror": every request replayed on every variant, Feedback on, batched.
// "shadow": half the requests to quantized variants compared, no Feedback.
ServerConfig TestConfig() {
  ServerConfig config;
  config.server.grpc_address = "127.0.0.1:0";
  config.server.metrics_address = "127.0.0.1:0";
  ModelConfig mirror = FmnistModel("mirror");
  mirror.drift.sample_rate = 1;
  mirror.drift.mode = DriftConfig::Mode::kMirror;
  mirror.drift.feedback_capacity = 100;
  mirror.batching.max_batch_size = 8;
  mirror.batching.max_queue_delay_us = 1000;
  ModelConfig shadow = FmnistModel("shadow");
  shadow.drift.sample_rate = 0.5;
  shadow.drift.feedback_capacity = 0;
  config.models = {mirror, shadow};
  return config;
}

class DriftServerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::exists(kData + "/train-images-idx3-ubyte.gz"))
        << kData << " is missing: tools/install_deps.sh installs dataset-fashion-mnist";
    auto server = QuantServer::Start(TestConfig());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    ASSERT_TRUE(server_->LoadModels().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    // The bundled 16 images are t10k images 0..15.
    auto labels = ReadIdx(kData + "/t10k-labels-idx1-ubyte.gz");
    ASSERT_TRUE(labels.ok()) << labels.status();
    labels_ = *labels;
  }
  static void TearDownTestSuite() {
    server_->Shutdown(std::chrono::milliseconds(100));
    delete server_;
    channel_.reset();
  }

  // Images first..first+batch-1 of the bundled 16 test images.
  static v1::PredictRequest Request(const std::string& model, int first, int batch,
                                    const std::string& variant = "", const std::string& id = "") {
    static const Tensor images = *ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
    v1::PredictRequest req;
    req.set_model(model);
    req.set_variant(variant);
    req.set_request_id(id);
    v1::Tensor* t = req.add_inputs();
    t->set_name("input");
    t->set_datatype(v1::FP32);
    for (int64_t d : {int64_t{batch}, int64_t{1}, int64_t{28}, int64_t{28}}) t->add_shape(d);
    const float* p = images.data<float>() + first * 784;
    t->mutable_float_data()->Add(p, p + batch * 784);
    return req;
  }
  static grpc::Status Predict(const v1::PredictRequest& req, v1::PredictResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    v1::PredictResponse local;
    return v1::InferenceService::NewStub(channel_)->Predict(&ctx, req, resp ? resp : &local);
  }
  static grpc::Status Feedback(const std::string& model, const std::string& id,
                               const std::vector<int64_t>& labels, v1::FeedbackResponse* resp) {
    v1::FeedbackRequest req;
    req.set_model(model);
    req.set_request_id(id);
    for (int64_t l : labels) req.add_labels(l);
    grpc::ClientContext ctx;
    return v1::InferenceService::NewStub(channel_)->Feedback(&ctx, req, resp);
  }
  static std::vector<int64_t> Labels16(int first, int count) {
    std::vector<int64_t> out;
    for (int i = first; i < first + count; ++i) {
      out.push_back(labels_.dtype() == DataType::kInt64 ? labels_.data<int64_t>()[i]
                                                        : labels_.data<uint8_t>()[i]);
    }
    return out;
  }
  static void WaitIdle(const std::string& model) {
    server_->registry().Find(model)->drift->WaitIdle();
  }
  static std::string MetricsText() {
    HttpResponse r = HttpGet(server_->metrics_port(), "/metrics");
    EXPECT_EQ(r.status, 200) << r.error;
    return r.body;
  }

  static QuantServer* server_;
  static std::shared_ptr<grpc::Channel> channel_;
  static Tensor labels_;
};

QuantServer* DriftServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel> DriftServerTest::channel_;
Tensor DriftServerTest::labels_;

qs::Labels Variant(const std::string& model, const std::string& variant, const std::string& bits) {
  return {{"model", model}, {"variant", variant}, {"bits", bits}};
}

// Mean of a histogram: _sum / _count.
double Mean(const Scrape& s, const std::string& name, const qs::Labels& labels) {
  return s.Value(name + "_sum", labels) / s.Value(name + "_count", labels);
}

TEST_F(DriftServerTest, MirrorModeComparesEveryBitWidthOnTheDefaultVariantsTraffic) {
  const Scrape before(MetricsText());
  const qs::Labels w8 = Variant("mirror", "w8a8", "8"), w2 = Variant("mirror", "w2a8", "2");
  const double w8_before = before.Value("quantserve_drift_samples_total", w8);
  const double w2_before = before.Value("quantserve_drift_samples_total", w2);
  // 16 images, 4 per request, all to the default variant (w8a8).
  for (int first = 0; first < 16; first += 4) ASSERT_TRUE(Predict(Request("mirror", first, 4)).ok());
  WaitIdle("mirror");
  const Scrape s(MetricsText());
  EXPECT_EQ(s.Value("quantserve_drift_samples_total", w8) - w8_before, 16);
  EXPECT_EQ(s.Value("quantserve_drift_samples_total", w2) - w2_before, 16);
  EXPECT_EQ(s.Value("quantserve_drift_enqueued_total", w8), 4 + before.Value("quantserve_drift_enqueued_total", w8));
  EXPECT_EQ(s.Value("quantserve_drift_dropped_total", w8), 0);
  // The reference has no drift series of its own.
  EXPECT_EQ(s.Count("quantserve_drift_samples_total", Variant("mirror", "fp32", "32")), 0);
  // Real quantization error: 2-bit weights drift further from fp32 than 8-bit.
  EXPECT_GT(Mean(s, "quantserve_drift_kl_divergence", w2),
            Mean(s, "quantserve_drift_kl_divergence", w8));
  EXPECT_GT(Mean(s, "quantserve_drift_relative_error", w2),
            Mean(s, "quantserve_drift_relative_error", w8));
  EXPECT_GT(Mean(s, "quantserve_drift_kl_divergence", w8), 0);
  const double agree8 = s.Value("quantserve_drift_top1_agreements_total", w8);
  EXPECT_GE(agree8, 14 + before.Value("quantserve_drift_top1_agreements_total", w8));
  EXPECT_LE(s.Value("quantserve_drift_top1_agreements_total", w2),
            s.Value("quantserve_drift_samples_total", w2));
  EXPECT_EQ(s.Value("quantserve_drift_kl_divergence_count", w2),
            s.Value("quantserve_drift_samples_total", w2));
  EXPECT_EQ(s.Value("quantserve_drift_queue_length", {{"model", "mirror"}}), 0);
}

TEST_F(DriftServerTest, KServeRequestsAreMonitoredToo) {
  const qs::Labels w2 = Variant("mirror", "w2a8", "2");
  const double before = Scrape(MetricsText()).Value("quantserve_drift_samples_total", w2);
  v1::PredictRequest p = Request("mirror", 0, 2);
  inference::ModelInferRequest req;
  req.set_model_name("mirror");
  req.set_model_version("fp32");
  req.set_id("kserve-1");
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  for (int64_t d : {2, 1, 28, 28}) in->add_shape(d);
  *in->mutable_contents()->mutable_fp32_contents() = p.inputs(0).float_data();
  grpc::ClientContext ctx;
  inference::ModelInferResponse resp;
  ASSERT_TRUE(inference::GRPCInferenceService::NewStub(channel_)->ModelInfer(&ctx, req, &resp).ok());
  WaitIdle("mirror");
  EXPECT_EQ(Scrape(MetricsText()).Value("quantserve_drift_samples_total", w2) - before, 2);
  // The KServe id works for Feedback.
  v1::FeedbackResponse fb;
  ASSERT_TRUE(Feedback("mirror", "kserve-1", Labels16(0, 2), &fb).ok());
  EXPECT_EQ(fb.variants_size(), 3);
}

TEST_F(DriftServerTest, ShadowModeSamplesHalfTheQuantizedRequestsAndNeverTheReference) {
  const qs::Labels w2 = Variant("shadow", "w2a8", "2");
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Predict(Request("shadow", i, 1, "w2a8")).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Predict(Request("shadow", i, 1, "fp32")).ok());
  WaitIdle("shadow");
  const Scrape s(MetricsText());
  EXPECT_EQ(s.Value("quantserve_drift_enqueued_total", w2), 4);
  EXPECT_EQ(s.Value("quantserve_drift_samples_total", w2), 4);
  EXPECT_EQ(s.Value("quantserve_drift_enqueued_total", Variant("shadow", "fp32", "32")), 0);
  EXPECT_EQ(s.Value("quantserve_drift_samples_total", Variant("shadow", "w8a8", "8")), 0);
  // Feedback is off for this model: no feedback series at all.
  EXPECT_EQ(s.Count("quantserve_feedback_samples_total", {{"model", "shadow"}}), 0);
}

TEST_F(DriftServerTest, FeedbackScoresTheServedAndTheReplayedVariants) {
  v1::PredictResponse served;
  v1::PredictRequest req = Request("mirror", 4, 6, "w2a8", "fb-1");
  req.set_top_k(1);
  ASSERT_TRUE(Predict(req, &served).ok());
  WaitIdle("mirror");
  const std::vector<int64_t> labels = Labels16(4, 6);
  int served_correct = 0;
  for (int i = 0; i < 6; ++i) served_correct += served.top_k(i).indices(0) == labels[i];

  v1::FeedbackResponse fb;
  grpc::Status st = Feedback("mirror", "fb-1", labels, &fb);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::map<std::string, std::pair<int, int>> by_variant;
  for (const auto& v : fb.variants()) by_variant[v.variant()] = {v.samples(), v.correct()};
  ASSERT_EQ(by_variant.size(), 3u);
  EXPECT_EQ(by_variant["w2a8"], std::make_pair(6, served_correct));
  EXPECT_EQ(by_variant["fp32"].first, 6);
  EXPECT_EQ(by_variant["w8a8"].first, 6);
  EXPECT_GE(by_variant["fp32"].second, 5);  // the fp32 model is right on 90 %

  const Scrape s(MetricsText());
  EXPECT_GE(s.Value("quantserve_feedback_samples_total", Variant("mirror", "w2a8", "2")), 6);
  EXPECT_GE(s.Value("quantserve_feedback_correct_total", Variant("mirror", "fp32", "32")), 5);

  // Scored once.
  st = Feedback("mirror", "fb-1", labels, &fb);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("request_id: 'fb-1'"));
  EXPECT_GE(Scrape(MetricsText()).Value("quantserve_feedback_unmatched_total", {{"model", "mirror"}}),
            1);
}

TEST_F(DriftServerTest, FeedbackErrorsNameTheField) {
  ASSERT_TRUE(Predict(Request("mirror", 0, 3, "", "fb-err")).ok());
  v1::FeedbackResponse fb;
  grpc::Status st = Feedback("mirror", "fb-err", {1, 2}, &fb);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("labels: 2 labels, but request 'fb-err' had 3"));
  st = Feedback("mirror", "fb-err", {1, -2, 3}, &fb);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("labels[1]"));
  // The entry survived both mistakes.
  EXPECT_TRUE(Feedback("mirror", "fb-err", {1, 2, 3}, &fb).ok());
  EXPECT_EQ(Feedback("mirror", "", {1}, &fb).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Feedback("nope", "x", {1}, &fb).error_code(), grpc::StatusCode::NOT_FOUND);
  st = Feedback("shadow", "x", {1}, &fb);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("feedback_capacity"));
}

TEST_F(DriftServerTest, DriftMetricsFollowPrometheusConventions) {
  const std::string body = MetricsText();
  for (const char* line : {"# TYPE quantserve_drift_samples_total counter",
                           "# TYPE quantserve_drift_top1_agreements_total counter",
                           "# TYPE quantserve_drift_kl_divergence histogram",
                           "# TYPE quantserve_drift_relative_error histogram",
                           "# TYPE quantserve_drift_dropped_total counter",
                           "# TYPE quantserve_drift_queue_length gauge",
                           "# TYPE quantserve_feedback_correct_total counter"}) {
    EXPECT_THAT(body, HasSubstr(line));
  }
}

// Runs `command` through the shell; its exit status.
int Shell(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST_F(DriftServerTest, PromtoolAcceptsTheExposition) {
  ASSERT_EQ(Shell("command -v promtool >/dev/null"), 0)
      << "promtool is missing: tools/install_deps.sh installs Debian's prometheus package";
  ASSERT_TRUE(Predict(Request("mirror", 0, 2)).ok());
  WaitIdle("mirror");
  const fs::path file = fs::temp_directory_path() / ("qs_metrics_" + std::to_string(getpid()));
  std::ofstream(file) << MetricsText();
  const fs::path out = file.string() + ".out";
  const int rc = Shell("promtool check metrics < " + file.string() + " > " + out.string() + " 2>&1");
  std::ifstream in(out);
  const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << report;
  fs::remove(file);
  fs::remove(out);
}

// A free loopback TCP port (bound, read, released).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(DriftServerTest, ARealPrometheusScrapesTheDriftSeries) {
  ASSERT_EQ(Shell("command -v prometheus >/dev/null"), 0)
      << "prometheus is missing: tools/install_deps.sh installs Debian's prometheus package";
  const fs::path dir = fs::temp_directory_path() / ("qs_prom_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: quantserve\n"
      << "    static_configs:\n      - targets: ['127.0.0.1:" << server_->metrics_port() << "']\n";
  const int port = FreePort();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string config = "--config.file=" + (dir / "prometheus.yml").string();
    const std::string storage = "--storage.tsdb.path=" + (dir / "data").string();
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    const std::string log = (dir / "prometheus.log").string();
    freopen(log.c_str(), "w", stdout);
    freopen(log.c_str(), "a", stderr);
    execlp("prometheus", "prometheus", config.c_str(), storage.c_str(), listen.c_str(),
           "--log.level=warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Traffic, so the series has moved when Prometheus reads it.
  for (int first = 0; first < 16; first += 8) ASSERT_TRUE(Predict(Request("mirror", first, 8)).ok());
  WaitIdle("mirror");
  const double expected =
      Scrape(MetricsText()).Value("quantserve_drift_samples_total", Variant("mirror", "w2a8", "2"));

  double seen = -1;
  std::string last;
  const std::string query =
      "/api/v1/query?query=quantserve_drift_samples_total%7Bmodel%3D%22mirror%22%2Cvariant%3D%22"
      "w2a8%22%7D";
  for (int attempt = 0; attempt < 300 && seen < expected; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    HttpResponse r = HttpGet(port, query);
    if (r.status != 200) continue;
    last = r.body;
    auto json = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || json["status"] != "success") continue;
    const auto& result = json["data"]["result"];
    if (result.empty()) continue;
    EXPECT_EQ(result[0]["metric"]["bits"], "2");
    seen = std::stod(result[0]["value"][1].get<std::string>());
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_GE(seen, expected) << "last answer from Prometheus: " << last;
  EXPECT_GT(expected, 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qs
