// quantserve-client against a real server: the accuracy it reports equals
// the same model's in-process evaluation of the same images, --json carries
// every key, and failures exit 1 naming their gRPC code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/server_config.h"
#include "engine/data/dataset.h"
#include "engine/data/npy.h"
#include "engine/evaluate.h"
#include "server/quant_server.h"
#include "tests/common/process_helpers.h"

namespace qs {
namespace {

using testing::HasSubstr;

const std::string kSource = QS_SOURCE_DIR;
const std::string kData = "/usr/share/datasets/fashion-mnist";

// fp32 and w8a8; requests are limited to 256 rows so a bigger batch fails.
std::string ConfigYaml() {
  return R"(
server:
  grpc_address: 127.0.0.1:0
  metrics_address: 127.0.0.1:0
  max_batch_rows: 256
models:
  - name: fmnist_cnn
    path: )" + kSource + R"(/models/fmnist_cnn.onnx
    default_variant: fp32
    batching: {max_batch_size: 32, max_queue_delay_us: 500}
    calibration:
      format: idx
      inputs: )" + kData + R"(/train-images-idx3-ubyte.gz
      limit: 200
    variants:
      - name: fp32
      - name: w8a8
        weights: {method: linear, bits: 8}
        activations: {bits: 8, calibration: minmax}
)";
}

struct ClientRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  nlohmann::json json() const { return nlohmann::json::parse(out); }
};

class ClientTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = testing_util::StartServerForTest(ConfigYaml(), "client_test.yaml", kSource).release();
    ASSERT_NE(server_, nullptr);
    tmp_ = std::filesystem::temp_directory_path() /
           ("client_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(tmp_);
  }
  static void TearDownTestSuite() {
    server_->Shutdown(std::chrono::milliseconds(100));
    delete server_;
    std::filesystem::remove_all(tmp_);
  }

  static std::string Address() { return "127.0.0.1:" + std::to_string(server_->grpc_port()); }

  // Runs quantserve-client with `args` after --address.
  static ClientRun Client(const std::string& args, const std::string& address = Address()) {
    const std::string err_file = (tmp_ / "stderr.txt").string();
    const std::string cmd = std::string(QUANTSERVE_CLIENT_BIN) + " --address " + address +
                            " " + args + " 2>" + err_file;
    const testing_util::CommandRun done = testing_util::RunCommand(cmd);
    ClientRun run;
    run.exit_code = done.exit_code;
    run.out = done.out;
    std::ifstream err(err_file);
    std::stringstream ss;
    ss << err.rdbuf();
    run.err = ss.str();
    return run;
  }

  static Dataset TestImages(int64_t count) {
    DatasetSpec spec;
    spec.inputs = kData + "/t10k-images-idx3-ubyte.gz";
    spec.labels = kData + "/t10k-labels-idx1-ubyte.gz";
    spec.limit = count;
    auto data = LoadDataset(spec, {1, 28, 28});
    EXPECT_TRUE(data.ok()) << data.status();
    return *data;
  }

  // The served variant's own accuracy on the first `count` test images.
  static double InProcessAccuracy(const std::string& variant, int64_t count) {
    auto model = server_->registry().Find("fmnist_cnn");
    const BuiltVariant* built = model->built.Find(variant);
    auto result = EvaluateClassifier(*built->model, TestImages(count), 16);
    EXPECT_TRUE(result.ok()) << result.status();
    return result->accuracy;
  }

  static QuantServer* server_;
  static std::filesystem::path tmp_;
};

QuantServer* ClientTest::server_ = nullptr;
std::filesystem::path ClientTest::tmp_;

TEST_F(ClientTest, First500AccuracyEqualsInProcessEvaluation) {
  ClientRun run = Client(
      "--model fmnist_cnn --variant fp32 --fashion-mnist --count 500 --batch 16 "
      "--concurrency 4 --json");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  nlohmann::json j = run.json();
  for (const char* key : {"model", "variant", "requests", "images", "accuracy",
                          "throughput_per_s", "p50_ms", "p99_ms", "errors"}) {
    EXPECT_TRUE(j.contains(key)) << key << " missing from " << run.out;
  }
  EXPECT_EQ(j["model"], "fmnist_cnn");
  EXPECT_EQ(j["variant"], "fp32");
  EXPECT_EQ(j["images"], 500);
  EXPECT_EQ(j["requests"], 32);  // ceil(500 / 16)
  EXPECT_EQ(j["errors"], 0);
  EXPECT_GT(j["throughput_per_s"].get<double>(), 0.0);
  EXPECT_GT(j["p50_ms"].get<double>(), 0.0);
  EXPECT_GE(j["p99_ms"].get<double>(), j["p50_ms"].get<double>());
  // The first 500 are easier than the whole split (0.916 vs 0.9009), so the
  // reference is the same model on the same images, in-process.
  const double expected = InProcessAccuracy("fp32", 500);
  EXPECT_NEAR(j["accuracy"].get<double>(), expected, 0.002);
  EXPECT_NEAR(j["accuracy"].get<double>(), 0.9009, 0.02);
}

// Sum of a counter family's children whose labels include `variant`.
double CounterSum(const prometheus::Registry& registry, const std::string& name,
                  const std::string& variant) {
  double sum = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "variant" && label.value == variant) sum += metric.counter.value;
      }
    }
  }
  return sum;
}

TEST_F(ClientTest, FeedbackReportsTheLabelsAndTheServerScoresThem) {
  const auto& registry = *server_->metrics().registry();
  const double samples_before = CounterSum(registry, "quantserve_feedback_samples_total", "w8a8");
  const double correct_before = CounterSum(registry, "quantserve_feedback_correct_total", "w8a8");
  ClientRun run = Client(
      "--model fmnist_cnn --variant w8a8 --fashion-mnist --count 200 --batch 20 --feedback "
      "--json");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  nlohmann::json j = run.json();
  EXPECT_EQ(j["feedback_sent"], 10);
  EXPECT_EQ(j["errors"], 0);
  // The server's live accuracy is the client's own accuracy on those images.
  const double samples =
      CounterSum(registry, "quantserve_feedback_samples_total", "w8a8") - samples_before;
  const double correct =
      CounterSum(registry, "quantserve_feedback_correct_total", "w8a8") - correct_before;
  EXPECT_EQ(samples, 200);
  EXPECT_NEAR(correct / samples, j["accuracy"].get<double>(), 1e-9);
}

TEST_F(ClientTest, WholeTestSplitGivesTheModelsKnownAccuracy) {
  ClientRun run = Client(
      "--model fmnist_cnn --variant fp32 --fashion-mnist --batch 100 --concurrency 4 --json");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  nlohmann::json j = run.json();
  EXPECT_EQ(j["images"], 10000);
  EXPECT_NEAR(j["accuracy"].get<double>(), 0.9009, 0.01);  // models/fmnist_cnn.json
}

TEST_F(ClientTest, QuantizedVariantEqualsInProcessEvaluation) {
  ClientRun run = Client(
      "--model fmnist_cnn --variant w8a8 --fashion-mnist --count 500 --batch 16 "
      "--concurrency 4 --json");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  nlohmann::json j = run.json();
  EXPECT_EQ(j["variant"], "w8a8");
  EXPECT_NEAR(j["accuracy"].get<double>(), InProcessAccuracy("w8a8", 500), 0.002);
}

TEST_F(ClientTest, DefaultVariantAndTextReport) {
  ClientRun run = Client("--model fmnist_cnn --fashion-mnist --count 64 --batch 8 --show 2");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("#0    9 Ankle boot    label 9 Ankle boot"));
  EXPECT_THAT(run.out, HasSubstr("class"));
  EXPECT_THAT(run.out, HasSubstr("total"));
  EXPECT_THAT(run.out, HasSubstr("variant fp32: 64 images in 8 requests, 0 failed"));
  EXPECT_THAT(run.out, HasSubstr("p99"));
}

TEST_F(ClientTest, NpyInputsWithAndWithoutLabels) {
  const std::string inputs = kSource + "/models/fmnist_cnn_first16_input.npy";
  ClientRun run = Client("--model fmnist_cnn --npy-inputs " + inputs + " --batch 5 --json");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  nlohmann::json j = run.json();
  EXPECT_TRUE(j["accuracy"].is_null());
  EXPECT_EQ(j["images"], 16);
  EXPECT_EQ(j["requests"], 4);

  const std::string labels = (tmp_ / "labels.npy").string();
  ASSERT_TRUE(WriteNpy(labels, TestImages(16).labels).ok());
  run = Client("--model fmnist_cnn --npy-inputs " + inputs + " --npy-labels " + labels +
               " --json");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NEAR(run.json()["accuracy"].get<double>(), InProcessAccuracy("fp32", 16), 1e-9);
}

TEST_F(ClientTest, UnknownModelExitsOneWithNotFound) {
  ClientRun run = Client("--model nope --fashion-mnist --count 10");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.out + run.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(run.err, HasSubstr("'nope'"));
}

TEST_F(ClientTest, UnknownVariantExitsOneListingVariants) {
  ClientRun run = Client("--model fmnist_cnn --variant int3 --fashion-mnist --count 10");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(run.err, HasSubstr("'fp32', 'w8a8'"));
}

TEST_F(ClientTest, FailedRequestsAreCountedByCode) {
  // 300 rows per request exceed the server's max_batch_rows of 256.
  ClientRun run = Client("--model fmnist_cnn --fashion-mnist --count 900 --batch 300 --json");
  EXPECT_EQ(run.exit_code, 1);
  nlohmann::json j = run.json();
  EXPECT_EQ(j["errors"], 3);
  ASSERT_EQ(j["errors_by_code"].size(), 1u) << run.out;
  const std::string code = j["errors_by_code"].begin().key();
  EXPECT_EQ(j["errors_by_code"][code], 3);
  EXPECT_THAT(run.err, HasSubstr("3 request(s) failed with " + code));
  EXPECT_TRUE(j["accuracy"].is_null());
}

TEST_F(ClientTest, UnreachableServerIsUnavailable) {
  ClientRun run = Client("--model fmnist_cnn --fashion-mnist --count 10", "127.0.0.1:1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(ClientTest, UsageErrors) {
  EXPECT_EQ(Client("--model fmnist_cnn").exit_code, 2);  // no data source
  EXPECT_EQ(Client("--model fmnist_cnn --fashion-mnist --batch 0").exit_code, 2);
  EXPECT_EQ(Client("--model fmnist_cnn --fashion-mnist --npy-inputs " + kSource +
                   "/models/fmnist_cnn_first16_input.npy")
                .exit_code,
            2);
  EXPECT_EQ(Client("--model fmnist_cnn --help").exit_code, 0);
}

}  // namespace
}  // namespace qs
