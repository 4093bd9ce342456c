// The `quantserve` binary as users and scripts call it: exit codes, files
// written, and the JSON keys of `report --json`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/data/npy.h"

namespace qs {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr
};

// `stderr_too`: capture stderr with stdout (progress lines go to stderr).
Result RunCli(const std::string& args, bool stderr_too = true) {
  const std::string cmd =
      std::string(QUANTSERVE_BIN) + " " + args + (stderr_too ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}

fs::path TempDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("quantserve_cli_" + name + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

const std::string kModels = QS_SOURCE_DIR "/models";

TEST(CliTest, RunWritesEachOutputAsNpy) {
  fs::path out = TempDir("run");
  Result r = RunCli("run --model " + kModels + "/fmnist_cnn.onnx --input input=" + kModels +
                    "/fmnist_cnn_first16_input.npy --output-dir " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto logits = ReadNpy((out / "logits.npy").string());
  auto expected = ReadNpy(kModels + "/fmnist_cnn_first16_logits.npy");
  ASSERT_TRUE(logits.ok()) << logits.status();
  ASSERT_EQ(logits->shape(), (Shape{16, 10}));
  for (int i = 0; i < 160; ++i) {
    EXPECT_NEAR(logits->data<float>()[i], expected->data<float>()[i], 1e-3);
  }
}

TEST(CliTest, RunReadsTensorProtoInputs) {
  const std::string kCase = "/usr/share/libonnx-testdata/data/node/test_softmax_axis_1";
  if (!fs::exists(kCase)) GTEST_SKIP() << "libonnx-testdata is not installed";
  fs::path out = TempDir("runpb");
  Result r = RunCli("run --model " + kCase + "/model.onnx --input x=" + kCase +
                    "/test_data_set_0/input_0.pb --output-dir " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto y = ReadNpy((out / "y.npy").string());
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ(y->shape(), (Shape{3, 4, 5}));
  // Softmax along axis 1: each column over the 4 rows sums to 1.
  for (int64_t a = 0; a < 3; ++a) {
    for (int64_t c = 0; c < 5; ++c) {
      float sum = 0;
      for (int64_t b = 0; b < 4; ++b) sum += y->data<float>()[a * 20 + b * 5 + c];
      EXPECT_NEAR(sum, 1.0f, 1e-5);
    }
  }
}

TEST(CliTest, RunNamesTheBadInput) {
  fs::path out = TempDir("badrun");
  Result r = RunCli("run --model " + kModels + "/fmnist_cnn.onnx --input image=" + kModels +
                    "/fmnist_cnn_first16_input.npy --output-dir " + out.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("'image' is not an input"));

  r = RunCli("run --model " + kModels + "/fmnist_cnn.onnx --input input=" + kModels +
             "/fmnist_cnn_first16_logits.npy --output-dir " + out.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("input 'input': shape [16,10]"));
}

TEST(CliTest, BenchJsonHasStableKeys) {
  Result r = RunCli("bench --model " + kModels +
                        "/fmnist_cnn.onnx --preset fp32 --batch 4 --threads 1 --seconds 0.2 --json",
                    false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  for (const char* key : {"model", "variant", "batch", "threads", "throughput_per_s", "p50_ms",
                          "p99_ms", "runs", "mean_ms", "weight_bytes", "build_seconds"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["variant"], "fp32");
  EXPECT_EQ(j["batch"], 4);
  EXPECT_GE(j["runs"].get<int>(), 3);
  EXPECT_GT(j["throughput_per_s"].get<double>(), 0);
  EXPECT_GE(j["p99_ms"].get<double>(), j["p50_ms"].get<double>());
  // throughput = runs * batch / wall time, and wall time >= runs * mean.
  EXPECT_LE(j["throughput_per_s"].get<double>(),
            4 * 1000.0 / j["mean_ms"].get<double>() * 1.01);
}

// --profile times every layer: the layers are the model's, each ran once per
// measured run, and their times add up to (at most) the whole run.
TEST(CliTest, BenchProfileAccountsForEveryLayer) {
  Result r = RunCli("bench --model " + kModels +
                        "/fmnist_cnn.onnx --preset fp32 --batch 2 --seconds 0.2 --json --profile",
                    false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  ASSERT_TRUE(j.contains("profile"));
  const auto& p = j["profile"];
  EXPECT_EQ(p["runs"], j["runs"]);
  std::set<std::string> op_types;
  double layers_ms = 0;
  for (const auto& l : p["layers"]) {
    op_types.insert(l["op_type"].get<std::string>());
    layers_ms += l["ms_per_run"].get<double>();
  }
  EXPECT_TRUE(op_types.count("Conv")) << p.dump();
  EXPECT_TRUE(op_types.count("MaxPool")) << p.dump();
  EXPECT_NEAR(layers_ms, p["kernels_ms"].get<double>(), 1e-6 + 1e-9 * layers_ms);
  EXPECT_LE(p["kernels_ms"].get<double>(), p["run_ms"].get<double>());
  EXPECT_GT(p["kernels_ms"].get<double>(), 0.0);
  // The profile times the plan's execution, inside each measured run (the
  // rest is input checks and the plan lookup).
  EXPECT_LE(p["run_ms"].get<double>(), j["mean_ms"].get<double>());
  double by_type_ms = 0;
  for (const auto& t : p["by_op_type"]) by_type_ms += t["ms_per_run"].get<double>();
  EXPECT_NEAR(by_type_ms, p["kernels_ms"].get<double>(), 1e-6);

  r = RunCli("bench --model " + kModels + "/fmnist_cnn.onnx --preset fp32 --seconds 0.1 --profile",
             false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("ms in kernels"));
  EXPECT_THAT(r.output, HasSubstr("Conv"));
}

TEST(CliTest, BenchQuantizesByPresetOrByConfigVariant) {
  Result r = RunCli("bench --model " + kModels +
                        "/fmnist_cnn.onnx --preset w8a8 --calibration-data random "
                        "--calibration-samples 32 --batch 2 --seconds 0.2 --json",
                    false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto w8 = nlohmann::json::parse(r.output);
  EXPECT_EQ(w8["variant"], "w8a8");
  EXPECT_LT(w8["weight_bytes"].get<int64_t>(), 487720 / 3);  // vs fp32's bytes
  fs::path dir = TempDir("bench");
  std::ofstream(dir / "config.yaml")
      << "models:\n  - name: m\n    path: " << kModels << "/fmnist_cnn.onnx\n"
      << "    calibration: {inputs: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz, "
         "limit: 64}\n"
      << "    variants:\n      - name: w4\n        weights: {bits: 4}\n"
         "        activations: {bits: 8}\n";
  r = RunCli("bench --model " + kModels + "/fmnist_cnn.onnx --config " +
                 (dir / "config.yaml").string() + " --variant w4 --seconds 0.2 --json",
             false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto w4 = nlohmann::json::parse(r.output);
  EXPECT_EQ(w4["variant"], "w4");
  EXPECT_LT(w4["weight_bytes"].get<int64_t>(), w8["weight_bytes"].get<int64_t>());
}

TEST(CliTest, BenchRunsOnInputDataRows) {
  // 450 digits rows repeated up to a batch of 1000: a tree ensemble's speed
  // depends on the values, so the benchmark can run on real ones.
  Result r = RunCli("bench --model " + kModels + "/ml/rf_digits.onnx --preset fp32 --input-data " +
                        kModels + "/ml/digits_test_x.npy --batch 1000 --seconds 0.1 --json",
                    false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["inputs"], kModels + "/ml/digits_test_x.npy");
  EXPECT_EQ(j["batch"], 1000);
  EXPECT_GE(j["runs"].get<int>(), 3);

  r = RunCli("bench --model " + kModels + "/fmnist_cnn.onnx --preset fp32 --seconds 0.1 --json",
             false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["inputs"], "random");

  // Rows of the wrong width name the file, the input and both shapes.
  r = RunCli("bench --model " + kModels + "/ml/rf_digits.onnx --preset fp32 --input-data " +
             kModels + "/ml/wine_test_x.npy --seconds 0.1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("wine_test_x.npy': shape [45,13] does not fit input 'input'"));
  // Labels are int64: not the input's dtype.
  r = RunCli("bench --model " + kModels + "/ml/rf_digits.onnx --preset fp32 --input-data " +
             kModels + "/ml/digits_test_y.npy --seconds 0.1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("dtype int64, but input 'input' is float32"));
}

TEST(CliTest, BenchUsageErrors) {
  const std::string model = " --model " + kModels + "/fmnist_cnn.onnx";
  Result r = RunCli("bench" + model);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("give exactly one of --config FILE --variant V, or --preset"));
  r = RunCli("bench" + model + " --preset w8a8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("--calibration-data: needed for a quantized variant"));
  r = RunCli("bench" + model + " --preset int3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--preset"));
}

TEST(CliTest, ReportJsonHasStableKeys) {
  fs::path dir = TempDir("report");
  std::ofstream(dir / "config.yaml") << "models:\n"
                                        "  - name: fmnist_cnn\n"
                                        "    path: " << kModels << "/fmnist_cnn.onnx\n"
                                        "    evaluation:\n"
                                        "      inputs: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
                                        "      labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
                                        "      limit: 500\n";
  Result r = RunCli("report --json --config " + (dir / "config.yaml").string(), false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  ASSERT_EQ(json["models"].size(), 1u);
  const auto& m = json["models"][0];
  EXPECT_EQ(m["name"], "fmnist_cnn");
  const auto& v = m["variants"][0];
  for (const char* key : {"name", "weight_bits", "activation_bits", "method", "weight_bytes",
                          "accuracy", "top1_agreement", "build_seconds"}) {
    EXPECT_TRUE(v.contains(key)) << key;
  }
  EXPECT_EQ(v["name"], "fp32");
  EXPECT_EQ(v["weight_bits"], 32);
  EXPECT_GT(v["accuracy"].get<double>(), 0.85);
  EXPECT_LE(v["accuracy"].get<double>(), 1.0);
  EXPECT_EQ(v["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(v["eval_samples"], 500);
}

TEST(CliTest, ReportJsonListsQuantizedLayersAndTheirPrimitives) {
  fs::path dir = TempDir("report_q");
  std::ofstream(dir / "config.yaml")
      << "models:\n"
         "  - name: fmnist_cnn\n"
         "    path: " << kModels << "/fmnist_cnn.onnx\n"
         "    evaluation:\n"
         "      inputs: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
         "      labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
         "      limit: 500\n"
         "    calibration:\n"
         "      inputs: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz\n"
         "      limit: 200\n"
         "    variants:\n"
         "      - name: fp32\n"
         "      - name: w4a8\n"
         "        weights: {bits: 4}\n";
  Result r = RunCli("report --json --config " + (dir / "config.yaml").string(), false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  const auto& v = json["models"][0]["variants"][1];
  EXPECT_EQ(v["name"], "w4a8");
  EXPECT_EQ(v["weight_bits"], 4);
  EXPECT_EQ(v["method"], "linear");
  ASSERT_EQ(v["layers"].size(), 4u);
  for (const auto& l : v["layers"]) {
    for (const char* key : {"name", "op", "weight_bits", "method", "src_dt", "wei_dt", "dst_dt", "impl"}) {
      EXPECT_TRUE(l.contains(key)) << key;
    }
    EXPECT_EQ(l["weight_bits"], 4);
    EXPECT_EQ(l["src_dt"], "u8");
    EXPECT_EQ(l["wei_dt"], "s8");
  }
  EXPECT_GT(v["accuracy"].get<double>(), 0.8);
  EXPECT_LT(v["weight_bytes"].get<int64_t>(), json["models"][0]["variants"][0]["weight_bytes"].get<int64_t>() / 6);
}

TEST(CliTest, ConfigErrorsExitNonZeroWithLocation) {
  fs::path dir = TempDir("badconfig");
  std::ofstream(dir / "config.yaml") << "models:\n  - name: m\n    pth: x.onnx\n";
  Result r = RunCli("report --config " + (dir / "config.yaml").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("config.yaml:3:5"));
  EXPECT_THAT(r.output, HasSubstr("pth"));
}

}  // namespace
}  // namespace qs
