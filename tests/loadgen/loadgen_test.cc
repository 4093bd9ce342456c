// quantserve-loadgen against a real in-process server on the bundled
// Fashion-MNIST CNN: --json carries every documented key with consistent
// counts, the variant mix reaches both variants, a request count and an open
// loop start exactly the calls asked for, and failures are counted by code
// with exit code 1. Correctness only: no timing assertions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/common/process_helpers.h"

namespace qs {
namespace {

const std::string kSource = QS_SOURCE_DIR;

std::string ConfigYaml() {
  return R"(
server:
  grpc_address: 127.0.0.1:0
  metrics_address: 127.0.0.1:0
models:
  - name: fmnist_cnn
    path: )" + kSource + R"(/models/fmnist_cnn.onnx
    default_variant: fp32
    batching: {max_batch_size: 8, max_queue_delay_us: 200}
    calibration:
      format: idx
      inputs: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
      limit: 64
    variants:
      - name: fp32
      - name: w8a8
        weights: {method: linear, bits: 8}
        activations: {bits: 8, calibration: minmax}
)";
}

class LoadgenTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = testing_util::StartServerForTest(ConfigYaml(), "loadgen_test.yaml", kSource);
    ASSERT_NE(server_, nullptr);
  }
  static void TearDownTestSuite() {
    if (server_) server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
  }

  struct Run : testing_util::CommandRun {
    nlohmann::json json() const { return nlohmann::json::parse(out); }
  };
  // quantserve-loadgen --address <server> --model fmnist_cnn --json <args>
  static Run Loadgen(const std::string& args) {
    return {testing_util::RunCommand(std::string(QUANTSERVE_LOADGEN_BIN) +
                                     " --address 127.0.0.1:" +
                                     std::to_string(server_->grpc_port()) +
                                     " --model fmnist_cnn --json " + args + " 2>/dev/null")};
  }

  static std::unique_ptr<QuantServer> server_;
};

std::unique_ptr<QuantServer> LoadgenTest::server_;

void ExpectStats(const nlohmann::json& j) {
  for (const char* key : {"requests", "ok", "errors", "errors_by_code", "rows", "requests_per_s",
                          "throughput_per_s", "mean_ms", "p50_ms", "p90_ms", "p99_ms",
                          "max_ms"}) {
    EXPECT_TRUE(j.contains(key)) << key << " in " << j.dump();
  }
  EXPECT_EQ(j["ok"].get<int64_t>() + j["errors"].get<int64_t>(), j["requests"].get<int64_t>());
  EXPECT_LE(j["p50_ms"].get<double>(), j["p90_ms"].get<double>());
  EXPECT_LE(j["p90_ms"].get<double>(), j["p99_ms"].get<double>());
  EXPECT_LE(j["p99_ms"].get<double>(), j["max_ms"].get<double>());
}

TEST_F(LoadgenTest, ClosedLoopMixReachesBothVariantsWithoutErrors) {
  const Run run = Loadgen("--variant fp32=1,w8a8=1 --concurrency 8 --duration-s 1 --batch 2");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const nlohmann::json j = run.json();
  ExpectStats(j);
  for (const char* key : {"address", "model", "mode", "concurrency", "target_rate_per_s",
                          "batch", "seconds", "late_starts", "variants"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["mode"], "closed");
  EXPECT_TRUE(j["target_rate_per_s"].is_null());
  EXPECT_GT(j["ok"].get<int64_t>(), 0);
  EXPECT_EQ(j["errors"].get<int64_t>(), 0);
  EXPECT_EQ(j["rows"].get<int64_t>(), 2 * j["ok"].get<int64_t>());
  EXPECT_GT(j["throughput_per_s"].get<double>(), 0.0);
  int64_t sum = 0;
  for (const char* v : {"fp32", "w8a8"}) {
    ASSERT_TRUE(j["variants"].contains(v)) << j.dump();
    ExpectStats(j["variants"][v]);
    EXPECT_GT(j["variants"][v]["ok"].get<int64_t>(), 0) << v;
    sum += j["variants"][v]["requests"].get<int64_t>();
  }
  EXPECT_EQ(sum, j["requests"].get<int64_t>());
}

TEST_F(LoadgenTest, RequestCountAndDefaultVariant) {
  const Run run = Loadgen("--requests 37 --concurrency 4 --warmup-requests 5");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const nlohmann::json j = run.json();
  EXPECT_EQ(j["requests"].get<int64_t>(), 37);
  EXPECT_EQ(j["ok"].get<int64_t>(), 37);
  ASSERT_TRUE(j["variants"].contains("fp32")) << j.dump();  // the config's default
  EXPECT_EQ(j["variants"]["fp32"]["requests"].get<int64_t>(), 37);
}

TEST_F(LoadgenTest, OpenLoopStartsTheScheduledCalls) {
  // 50 calls/s for 0.5 s: exactly 25 scheduled starts.
  const Run run = Loadgen("--rate 50 --duration-s 0.5 --concurrency 4 --variant w8a8");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const nlohmann::json j = run.json();
  EXPECT_EQ(j["mode"], "open");
  EXPECT_DOUBLE_EQ(j["target_rate_per_s"].get<double>(), 50.0);
  EXPECT_EQ(j["requests"].get<int64_t>(), 25);
  EXPECT_EQ(j["variants"]["w8a8"]["ok"].get<int64_t>(), 25);
}

TEST_F(LoadgenTest, FailuresAreCountedByCode) {
  const Run run = Loadgen("--requests 6 --variant fp32=1,nope=1 --concurrency 2");
  EXPECT_EQ(run.exit_code, 1);
  const nlohmann::json j = run.json();
  EXPECT_EQ(j["requests"].get<int64_t>(), 6);
  const int64_t failed = j["variants"]["nope"]["requests"].get<int64_t>();
  EXPECT_GT(failed, 0);
  EXPECT_EQ(j["errors"].get<int64_t>(), failed);
  EXPECT_EQ(j["errors_by_code"].value("NOT_FOUND", int64_t{0}), failed);
  EXPECT_EQ(j["variants"]["nope"]["ok"].get<int64_t>(), 0);
  EXPECT_EQ(j["variants"]["fp32"]["errors"].get<int64_t>(), 0);
}

TEST_F(LoadgenTest, NpyInputsAndBadMixAreChecked) {
  const Run ok = Loadgen("--requests 10 --batch 3 --npy " + kSource +
                         "/models/fmnist_cnn_first16_input.npy");
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(ok.json()["rows"].get<int64_t>(), 30);
  EXPECT_EQ(Loadgen("--requests 1 --variant fp32=0").exit_code, 2);
  EXPECT_EQ(Loadgen("--requests 1 --variant fp32,fp32").exit_code, 2);
}

}  // namespace
}  // namespace qs
