#include "config/server_config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// Joins lines with '\n' so that line N of the document is element N-1.
std::string Lines(std::initializer_list<const char*> lines) {
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

void WriteFile(const fs::path& path, const std::string& contents) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("server_config_test_", getpid(), "_", info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    WriteFile(dir_ / "model.onnx", "not really onnx");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  absl::StatusOr<ServerConfig> Parse(const std::string& yaml) {
    return ParseServerConfig(yaml, "test.yaml", dir_.string());
  }

  // The error message of a config that must fail with InvalidArgument.
  std::string Error(const std::string& yaml) {
    absl::StatusOr<ServerConfig> config = Parse(yaml);
    EXPECT_FALSE(config.ok()) << "parsed unexpectedly:\n" << yaml;
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << config.status();
    const std::string message(config.status().message());
    EXPECT_THAT(message, MatchesRegex("test\\.yaml:[0-9]+:[0-9]+: .+"));
    return message;
  }

  // A minimal valid config with `extra` lines appended to the model.
  std::string Model(std::initializer_list<const char*> extra) {
    std::string yaml = Lines({"models:", "  - name: m", "    path: model.onnx"});
    for (const char* line : extra) absl::StrAppend(&yaml, line, "\n");
    return yaml;
  }

  fs::path dir_;
};

constexpr const char* kFullConfig[] = {
    "server:",                                   // 1
    "  grpc_address: 127.0.0.1:7000",            // 2
    "  metrics_address: '[::1]:7001'",           // 3
    "  worker_threads: 8",                       // 4
    "  intra_op_threads: 2",                     // 5
    "  max_message_bytes: 1048576",              // 6
    "models:",                                   // 7
    "  - name: fmnist_cnn",                      // 8
    "    path: model.onnx",                      // 9
    "    default_variant: int8",                 // 10
    "    eval_batch_size: 128",                  // 11
    "    evaluation:",                           // 12
    "      format: npy",                         // 13
    "      inputs: data/x.npy",                  // 14
    "      labels: /abs/y.npy",                  // 15
    "      scale: 0.5",                          // 16
    "      offset: -1",                          // 17
    "      limit: 1000",                         // 18
    "    variants:",                             // 19
    "      - name: fp32",                        // 20
    "      - name: int8",                        // 21
    "  - name: other.model-2",                   // 22
    "    path: model.onnx",                      // 23
};

std::string FullConfig() {
  std::string yaml;
  for (const char* line : kFullConfig) absl::StrAppend(&yaml, line, "\n");
  return yaml;
}

TEST_F(ServerConfigTest, ParsesFullConfig) {
  absl::StatusOr<ServerConfig> config = Parse(FullConfig());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->source, "test.yaml");
  EXPECT_EQ(config->server.grpc_address, "127.0.0.1:7000");
  EXPECT_EQ(config->server.metrics_address, "[::1]:7001");
  EXPECT_EQ(config->server.worker_threads, 8);
  EXPECT_EQ(config->server.intra_op_threads, 2);
  EXPECT_EQ(config->server.max_message_bytes, 1048576);
  ASSERT_EQ(config->models.size(), 2u);

  const ModelConfig& m = config->models[0];
  EXPECT_EQ(m.name, "fmnist_cnn");
  EXPECT_EQ(m.path, (dir_ / "model.onnx").string());
  EXPECT_EQ(m.default_variant, "int8");
  EXPECT_EQ(m.eval_batch_size, 128);
  ASSERT_TRUE(m.evaluation.has_value());
  EXPECT_EQ(m.evaluation->format, DatasetConfig::Format::kNpy);
  EXPECT_EQ(m.evaluation->inputs, (dir_ / "data/x.npy").string());
  EXPECT_EQ(m.evaluation->labels, "/abs/y.npy");
  EXPECT_FLOAT_EQ(m.evaluation->scale, 0.5f);
  EXPECT_FLOAT_EQ(m.evaluation->offset, -1.0f);
  EXPECT_EQ(m.evaluation->limit, 1000);
  ASSERT_EQ(m.variants.size(), 2u);
  EXPECT_EQ(m.variants[0].name, "fp32");
  EXPECT_EQ(m.variants[1].name, "int8");

  const ModelConfig& other = config->models[1];
  EXPECT_EQ(other.name, "other.model-2");
  EXPECT_FALSE(other.evaluation.has_value());
  EXPECT_EQ(other.default_variant, "fp32");
}

TEST_F(ServerConfigTest, AppliesDefaults) {
  absl::StatusOr<ServerConfig> config = Parse(Model({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "0.0.0.0:8500");
  EXPECT_EQ(config->server.metrics_address, "0.0.0.0:9090");
  EXPECT_EQ(config->server.worker_threads, 0);
  EXPECT_EQ(config->server.intra_op_threads, 1);
  EXPECT_EQ(config->server.max_message_bytes, 64 << 20);
  EXPECT_EQ(config->server.activation_cache_mb, 256);
  ASSERT_EQ(config->models.size(), 1u);
  const ModelConfig& m = config->models[0];
  EXPECT_EQ(m.eval_batch_size, 64);
  EXPECT_FALSE(m.evaluation.has_value());
  ASSERT_EQ(m.variants.size(), 1u);
  EXPECT_EQ(m.variants[0].name, "fp32");
  EXPECT_EQ(m.default_variant, "fp32");
}

TEST_F(ServerConfigTest, DatasetDefaultsAndFirstVariantIsDefault) {
  absl::StatusOr<ServerConfig> config = Parse(Model({
      "    evaluation:",
      "      inputs: x.gz",
      "      labels: y.gz",
      "    variants:",
      "      - name: b",
      "      - name: a",
  }));
  ASSERT_TRUE(config.ok()) << config.status();
  const ModelConfig& m = config->models[0];
  ASSERT_TRUE(m.evaluation.has_value());
  EXPECT_EQ(m.evaluation->format, DatasetConfig::Format::kIdx);
  EXPECT_FLOAT_EQ(m.evaluation->scale, 1.0f / 255.0f);
  EXPECT_FLOAT_EQ(m.evaluation->offset, 0.0f);
  EXPECT_EQ(m.evaluation->limit, 0);
  EXPECT_EQ(m.default_variant, "b");
  EXPECT_STREQ(DatasetFormatName(m.evaluation->format), "idx");
}

TEST_F(ServerConfigTest, EmptySectionsMeanDefaults) {
  absl::StatusOr<ServerConfig> config = Parse(Lines({
      "server:",
      "models:",
      "  - name: m",
      "    path: model.onnx",
      "    evaluation:",
      "    variants:",
  }));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "0.0.0.0:8500");
  EXPECT_FALSE(config->models[0].evaluation.has_value());
  ASSERT_EQ(config->models[0].variants.size(), 1u);
  EXPECT_EQ(config->models[0].variants[0].name, "fp32");
}

TEST_F(ServerConfigTest, AcceptsQuotedNumbersFlowStyleAndAliases) {
  absl::StatusOr<ServerConfig> config = Parse(Lines({
      "server: {worker_threads: '4', intra_op_threads: +0}",
      "models:",
      "  - &base {name: a, path: model.onnx, eval_batch_size: \"32\"}",
      "  - {name: b, path: model.onnx, variants: &v [{name: x}, {name: y}]}",
      "  - {name: c, path: model.onnx, variants: *v, default_variant: y}",
  }));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.worker_threads, 4);
  EXPECT_EQ(config->server.intra_op_threads, 0);
  EXPECT_EQ(config->models[0].eval_batch_size, 32);
  EXPECT_EQ(config->models[2].variants.size(), 2u);
  EXPECT_EQ(config->models[2].default_variant, "y");
}

TEST_F(ServerConfigTest, ResolvesRelativePathsAgainstBaseDir) {
  WriteFile(dir_ / "models" / "net.onnx", "x");
  absl::StatusOr<ServerConfig> config = ParseServerConfig(
      Lines({
          "models:",
          "  - name: m",
          "    path: ../models/./net.onnx",
          "    evaluation:",
          "      inputs: ../data/in.gz",
          "      labels: /tmp/../labels.gz",
      }),
      "inline", (dir_ / "config").string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->models[0].path, (dir_ / "models" / "net.onnx").string());
  EXPECT_EQ(config->models[0].evaluation->inputs,
            (dir_ / "data" / "in.gz").string());
  EXPECT_EQ(config->models[0].evaluation->labels, "/labels.gz");
}

TEST_F(ServerConfigTest, RelativeBaseDirIsMadeAbsolute) {
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  absl::StatusOr<ServerConfig> config =
      ParseServerConfig(Model({}), "inline", ".");
  fs::current_path(cwd);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->models[0].path, (dir_ / "model.onnx").string());
}

TEST_F(ServerConfigTest, LoadResolvesAgainstTheConfigFilesDirectory) {
  WriteFile(dir_ / "models" / "net.onnx", "x");
  const fs::path file = dir_ / "etc" / "qs.yaml";
  WriteFile(file, Lines({"models:", "  - name: m",
                         "    path: ../models/net.onnx"}));
  absl::StatusOr<ServerConfig> config = LoadServerConfig(file.string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->source, file.string());
  EXPECT_EQ(config->models[0].path, (dir_ / "models" / "net.onnx").string());

  // Errors name the file as given.
  WriteFile(file, Lines({"models:", "  - name: m", "    paht: x"}));
  config = LoadServerConfig(file.string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              StartsWith(absl::StrCat(file.string(), ":3:5: models[0].paht: ")));
}

TEST_F(ServerConfigTest, LoadMissingFileIsNotFound) {
  const std::string path = (dir_ / "nope.yaml").string();
  absl::StatusOr<ServerConfig> config = LoadServerConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
}

TEST_F(ServerConfigTest, LoadDirectoryIsInvalidArgument) {
  absl::StatusOr<ServerConfig> config = LoadServerConfig(dir_.string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("is a directory"));
}

TEST_F(ServerConfigTest, RefusesConfigsOver16MiBBeforeParsing) {
  const std::string huge((16 << 20) + 1, '#');
  const fs::path file = dir_ / "huge.yaml";
  WriteFile(file, huge);
  absl::StatusOr<ServerConfig> config = LoadServerConfig(file.string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr(":1:1: the config is 16777217 bytes; the limit is "
                        "16777216"));
  EXPECT_THAT(Error(huge), HasSubstr("test.yaml:1:1: the config is 16777217"));
}

TEST_F(ServerConfigTest, RefusesNodeBombs) {
  std::string yaml = "models: [";
  for (int i = 0; i < 200000; ++i) yaml += "0,";
  yaml += "0]\n";
  EXPECT_THAT(Error(yaml), HasSubstr("YAML nodes; refusing to load it"));
}

TEST_F(ServerConfigTest, DeepNestingIsAnErrorNotACrash) {
  const int depth = 100000;
  EXPECT_THAT(Error(std::string(depth, '[') + std::string(depth, ']')),
              HasSubstr("nesting deeper than"));
  std::string maps;
  for (int i = 0; i < depth; ++i) maps += "{a: ";
  EXPECT_THAT(Error(maps), HasSubstr("test.yaml:1:"));
  std::string block;
  for (int i = 0; i < 1000; ++i) {
    absl::StrAppend(&block, std::string(i, ' '), "a:\n");
  }
  EXPECT_THAT(Error(block), HasSubstr("nesting deeper than"));
}

TEST_F(ServerConfigTest, SyntaxErrorsCarryThePosition) {
  EXPECT_THAT(Error(Lines({"models: [1, 2", "server: 3"})),
              HasSubstr("test.yaml:2:7: YAML syntax error: end of sequence "
                        "flow not found"));
  EXPECT_THAT(
      Error(Lines({"server:", "  worker_threads: 1", "\tintra_op_threads: 1"})),
      HasSubstr("test.yaml:3:1: YAML syntax error: illegal tab when looking "
                "for indentation"));
  EXPECT_THAT(Error(Lines({"models: *nothing"})),
              HasSubstr("test.yaml:1:9: YAML syntax error: the referenced "
                        "anchor is not defined"));
}

TEST_F(ServerConfigTest, EmptyConfigIsAnError) {
  EXPECT_EQ(Error(""), "test.yaml:1:1: the config is empty");
  EXPECT_EQ(Error("# nothing but a comment\n"),
            "test.yaml:1:1: the config is empty");
  EXPECT_EQ(Error("---\n"), "test.yaml:1:1: the config is empty");
}

TEST_F(ServerConfigTest, MultipleDocumentsAreAnError) {
  EXPECT_THAT(Error(Model({"---", "models: []"})),
              HasSubstr("test.yaml:4:1: the config must be a single YAML "
                        "document"));
}

TEST_F(ServerConfigTest, TopLevelMustBeAMap) {
  EXPECT_EQ(Error("- a\n- b\n"),
            "test.yaml:1:1: expected the config (a map), got a list");
  EXPECT_EQ(Error("hello\n"),
            "test.yaml:1:1: expected the config (a map), got a scalar");
}

TEST_F(ServerConfigTest, PathsAreConfinedToTheirRoots) {
  fs::create_directories(dir_ / "models" / "sub");
  fs::create_directories(dir_ / "data");
  WriteFile(dir_ / "models" / "sub" / "m.onnx", "x");
  WriteFile(dir_ / "outside.onnx", "x");
  fs::create_symlink(dir_ / "outside.onnx", dir_ / "models" / "link.onnx");
  auto yaml = [](const std::string& model_path, const std::string& data_path) {
    return Lines({"server:", "  model_roots: [models]", "  data_roots: [data]", "models:",
                  "  - name: m"}) +
           "    path: " + model_path + "\n    evaluation: {inputs: " + data_path +
           ", labels: data/y.npy}\n";
  };
  absl::StatusOr<ServerConfig> ok = Parse(yaml("models/sub/m.onnx", "data/x.npy"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->server.model_roots, std::vector<std::string>{fs::canonical(dir_ / "models")});
  // `..` out of the root, an absolute path elsewhere, a symlink pointing out.
  EXPECT_THAT(Error(yaml("models/../outside.onnx", "data/x.npy")),
              HasSubstr("test.yaml:6:11: models[0].path: \"" + (dir_ / "outside.onnx").string() +
                        "\" is outside the allowed model roots"));
  EXPECT_THAT(Error(yaml((dir_ / "outside.onnx").string(), "data/x.npy")),
              HasSubstr("is outside the allowed model roots"));
  EXPECT_THAT(Error(yaml("models/link.onnx", "data/x.npy")),
              HasSubstr("(resolved: \"" + (dir_ / "outside.onnx").string() + "\")"));
  EXPECT_THAT(Error(yaml("models/sub/m.onnx", "/etc/passwd")),
              HasSubstr("models[0].evaluation.inputs: \"/etc/passwd\" is outside the allowed "
                        "data roots"));
  EXPECT_THAT(Error(Lines({"server:", "  model_roots: [nowhere]"}) + Model({})),
              HasSubstr("test.yaml:2:17: server.model_roots[0]: model root"));
}

TEST_F(ServerConfigTest, WatchConfigMs) {
  absl::StatusOr<ServerConfig> config = Parse(Model({}));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->server.watch_config_ms, 0);
  const std::string yaml = "server:\n  watch_config_ms: 2000\n" + Model({});
  config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.watch_config_ms, 2000);
  EXPECT_THAT(Error("server:\n  watch_config_ms: -5\n" + Model({})),
              HasSubstr("test.yaml:2:20: server.watch_config_ms:"));
}

TEST_F(ServerConfigTest, DriftDefaultsToOffWithFeedbackOn) {
  absl::StatusOr<ServerConfig> config = Parse(Model({}));
  ASSERT_TRUE(config.ok()) << config.status();
  const DriftConfig& drift = config->models[0].drift;
  EXPECT_EQ(drift.sample_rate, 0);
  EXPECT_EQ(drift.mode, DriftConfig::Mode::kShadow);
  EXPECT_EQ(drift.reference, "");
  EXPECT_EQ(drift.queue_capacity, 64);
  EXPECT_EQ(drift.feedback_capacity, 10000);
}

TEST_F(ServerConfigTest, ParsesDrift) {
  absl::StatusOr<ServerConfig> config = Parse(Model({
      "    variants:", "      - name: fp32", "      - name: ref2",
      "    drift:", "      sample_rate: 0.05", "      mode: mirror",
      "      reference: ref2", "      queue_capacity: 8", "      feedback_capacity: 0"}));
  ASSERT_TRUE(config.ok()) << config.status();
  const DriftConfig& drift = config->models[0].drift;
  EXPECT_DOUBLE_EQ(drift.sample_rate, 0.05);
  EXPECT_EQ(drift.mode, DriftConfig::Mode::kMirror);
  EXPECT_EQ(drift.reference, "ref2");
  EXPECT_EQ(drift.queue_capacity, 8);
  EXPECT_EQ(drift.feedback_capacity, 0);
}

TEST_F(ServerConfigTest, DriftErrorsNameLineAndKey) {
  EXPECT_THAT(Error(Model({"    drift:", "      sample_rate: 1.5"})),
              HasSubstr("test.yaml:5:20: models[0].drift.sample_rate: value 1.5 is not a "
                        "fraction (allowed: 0..1)"));
  EXPECT_THAT(Error(Model({"    drift:", "      mode: sideways"})),
              HasSubstr("test.yaml:5:13: models[0].drift.mode:"));
  EXPECT_THAT(Error(Model({"    drift:", "      queue_capacity: 0"})),
              HasSubstr("test.yaml:5:23: models[0].drift.queue_capacity:"));
  EXPECT_THAT(Error(Model({"    drift:", "      reference: int9"})),
              HasSubstr("test.yaml:5:18: models[0].drift.reference: \"int9\" names no variant "
                        "of this model (unquantized: fp32)"));
  EXPECT_THAT(Error(Model({"    drift:", "      sample_rate: 0.1", "      rate: 2"})),
              HasSubstr("models[0].drift.rate: unknown key"));
}

TEST_F(ServerConfigTest, UnknownKeysListTheAllowedOnes) {
  EXPECT_EQ(Error(Lines({"modles: []"})),
            "test.yaml:1:1: modles: unknown key (allowed: server, models); "
            "did you mean \"models\"?");
  EXPECT_THAT(
      Error(Lines({"server:", "  threads: 4", "models: []"})),
      HasSubstr("test.yaml:2:3: server.threads: unknown key (allowed: "
                "grpc_address, metrics_address, worker_threads, "
                "intra_op_threads, max_message_bytes, shutdown_grace_ms, "
                "access_log, tls, max_tensor_elements, max_batch_rows, "
                "nan_policy, watch_config_ms, model_roots, data_roots, max_connection_age_ms, "
                "max_concurrent_calls, activation_cache_mb)"));
  EXPECT_THAT(Error(Model({"    evalution: {}"})),
              HasSubstr("test.yaml:4:5: models[0].evalution: unknown key "
                        "(allowed: name, path, default_variant, "
                        "eval_batch_size, evaluation, calibration, variants, "
                        "batching, drift); did you mean \"evaluation\"?"));
  EXPECT_THAT(Error(Model({"    evaluation:", "      inputs: a",
                           "      labels: b", "      shift: 1"})),
              HasSubstr("test.yaml:7:7: models[0].evaluation.shift: unknown "
                        "key (allowed: format, inputs, labels, scale, offset, "
                        "limit)"));
  EXPECT_THAT(Error(Model({"    variants:", "      - name: int8",
                           "        bits: 8"})),
              HasSubstr("test.yaml:6:9: models[0].variants[0].bits: unknown "
                        "key (allowed: name, weights, activations, optimize, "
                        "layers, auto, embeddings, trees)"));
  // yaml-cpp 0.7 has no merge keys: `<<` is just an unknown key.
  EXPECT_THAT(Error(Lines({"x: &x {}", "<<: *x"})),
              HasSubstr("test.yaml:1:1: x: unknown key"));
}

TEST_F(ServerConfigTest, DuplicateKeysAreAnError) {
  EXPECT_THAT(Error(Lines({"server:", "  worker_threads: 1",
                           "  worker_threads: 2", "models: []"})),
              HasSubstr("test.yaml:3:3: server.worker_threads: duplicate key "
                        "(first defined at line 2)"));
}

TEST_F(ServerConfigTest, NonScalarKeysAreAnError) {
  EXPECT_THAT(Error(Lines({"server:", "  ? [a, b]", "  : 1"})),
              HasSubstr("test.yaml:2:5: server: keys must be strings, got a "
                        "list"));
}

TEST_F(ServerConfigTest, WrongTypes) {
  EXPECT_THAT(Error(Model({"    eval_batch_size: {a: 1}"})),
              HasSubstr("test.yaml:4:22: models[0].eval_batch_size: expected "
                        "an integer, got a map"));
  EXPECT_THAT(Error(Model({"    eval_batch_size: abc"})),
              HasSubstr("test.yaml:4:22: models[0].eval_batch_size: expected "
                        "an integer, got \"abc\""));
  EXPECT_THAT(Error(Model({"    eval_batch_size: 1.5"})),
              HasSubstr("test.yaml:4:22: models[0].eval_batch_size: expected "
                        "an integer, got \"1.5\""));
  EXPECT_THAT(Error(Model({"    eval_batch_size: 0x10"})),
              HasSubstr("expected an integer, got \"0x10\""));
  EXPECT_THAT(Error(Model({"    eval_batch_size: true"})),
              HasSubstr("expected an integer, got \"true\""));
  // An empty value is reported at its key (yaml-cpp marks it at the next
  // token).
  EXPECT_THAT(Error(Lines({"server:", "  worker_threads:", "models: []"})),
              HasSubstr("test.yaml:2:3: server.worker_threads: expected an "
                        "integer, got null"));
  EXPECT_THAT(Error(Lines({"server: [1]", "models: []"})),
              HasSubstr("test.yaml:1:9: server: expected the server section "
                        "(a map), got a list"));
  EXPECT_THAT(Error(Lines({"models:", "  m: {}"})),
              HasSubstr("test.yaml:2:3: models: expected a list of models, "
                        "got a map"));
  EXPECT_THAT(Error(Lines({"models:", "  - just-a-name"})),
              HasSubstr("test.yaml:2:5: models[0]: expected a model (a map), "
                        "got a scalar"));
  EXPECT_THAT(Error(Lines({"models:", "  - name: [m]", "    path: model.onnx"})),
              HasSubstr("test.yaml:2:11: models[0].name: expected a string, "
                        "got a list"));
  EXPECT_THAT(Error(Model({"    evaluation:", "      inputs: a",
                           "      labels: b", "      scale: abc"})),
              HasSubstr("test.yaml:7:14: models[0].evaluation.scale: expected "
                        "a number, got \"abc\""));
  EXPECT_THAT(Error(Model({"    evaluation: [a]"})),
              HasSubstr("test.yaml:4:17: models[0].evaluation: expected a "
                        "dataset (a map), got a list"));
  EXPECT_THAT(Error(Model({"    variants: fp32"})),
              HasSubstr("test.yaml:4:15: models[0].variants: expected a list "
                        "of variants, got a scalar"));
}

TEST_F(ServerConfigTest, OutOfRangeNumbers) {
  EXPECT_EQ(Error(Model({"    eval_batch_size: 0"})),
            "test.yaml:4:22: models[0].eval_batch_size: value 0 is out of "
            "range (allowed: 1..4096)");
  EXPECT_THAT(Error(Model({"    eval_batch_size: 4097"})),
              HasSubstr("value 4097 is out of range (allowed: 1..4096)"));
  EXPECT_THAT(Error(Lines({"server: {worker_threads: 1025}", "models: []"})),
              HasSubstr("test.yaml:1:26: server.worker_threads: value 1025 is "
                        "out of range (allowed: 0..1024)"));
  EXPECT_THAT(Error(Lines({"server: {max_concurrent_calls: 15}", "models: []"})),
              HasSubstr("test.yaml:1:32: server.max_concurrent_calls: must be 0 (automatic) "
                        "or 16..65536, got 15"));
  EXPECT_THAT(Error(Lines({"server: {max_concurrent_calls: 65537}", "models: []"})),
              HasSubstr("server.max_concurrent_calls: value 65537 is out of range "
                        "(allowed: 0..65536)"));
  {
    auto zero = Parse(Lines({"server: {activation_cache_mb: 0}", "models:", "  - name: m",
                             "    path: model.onnx"}));
    ASSERT_TRUE(zero.ok()) << zero.status();
    EXPECT_EQ(zero->server.activation_cache_mb, 0);
  }
  EXPECT_THAT(Error(Lines({"server: {activation_cache_mb: -1}", "models: []"})),
              HasSubstr("server.activation_cache_mb: value -1 is out of range "
                        "(allowed: 0..1048576)"));
  EXPECT_THAT(Error(Lines({"server: {intra_op_threads: -1}", "models: []"})),
              HasSubstr("server.intra_op_threads: value -1 is out of range "
                        "(allowed: 0..1024)"));
  EXPECT_THAT(Error(Lines({"server: {max_message_bytes: 1023}", "models: []"})),
              HasSubstr("server.max_message_bytes: value 1023 is out of range "
                        "(allowed: 1024..2147483647)"));
  EXPECT_THAT(
      Error(Lines({"server: {max_message_bytes: 2147483648}", "models: []"})),
      HasSubstr("(allowed: 1024..2147483647)"));
  EXPECT_THAT(
      Error(Lines({"server: {worker_threads: 99999999999999999999}",
                   "models: []"})),
      HasSubstr("value \"99999999999999999999\" is out of range (allowed: "
                "0..1024)"));
  const char* dataset[] = {"    evaluation:", "      inputs: a",
                           "      labels: b"};
  auto with = [&](const char* line) {
    return Model({dataset[0], dataset[1], dataset[2], line});
  };
  EXPECT_THAT(Error(with("      limit: -1")),
              HasSubstr("test.yaml:7:14: models[0].evaluation.limit: value -1 "
                        "is out of range (allowed: 0..9223372036854775807)"));
  EXPECT_THAT(Error(with("      scale: .inf")),
              HasSubstr("models[0].evaluation.scale: value .inf is not a "
                        "finite number"));
  EXPECT_THAT(Error(with("      offset: nan")),
              HasSubstr("models[0].evaluation.offset: value nan is not a "
                        "finite number"));
  EXPECT_THAT(Error(with("      scale: 1e39")),
              HasSubstr("value 1e39 is out of range for a 32-bit float"));
  EXPECT_THAT(Error(with("      scale: 0")),
              HasSubstr("test.yaml:7:14: models[0].evaluation.scale: scale "
                        "must not be 0"));
}

TEST_F(ServerConfigTest, DuplicateNames) {
  EXPECT_EQ(Error(Lines({"models:", "  - name: m", "    path: model.onnx",
                         "  - name: m", "    path: model.onnx"})),
            "test.yaml:4:11: models[1].name: duplicate model name \"m\" "
            "(first defined at line 2)");
  EXPECT_EQ(Error(Model({"    variants:", "      - name: fp32",
                         "      - {name: fp32}"})),
            "test.yaml:6:16: models[0].variants[1].name: duplicate variant "
            "name \"fp32\" (first defined at line 5)");
}

TEST_F(ServerConfigTest, BadNameCharacters) {
  EXPECT_EQ(Error(Lines({"models:", "  - name: fm nist", "    path: x"})),
            "test.yaml:2:11: models[0].name: invalid model name \"fm nist\": "
            "character ' ' is not allowed (allowed: letters, digits, '_', "
            "'.', '-')");
  EXPECT_THAT(Error(Lines({"models:", "  - name: a/b", "    path: x"})),
              HasSubstr("character '/' is not allowed"));
  EXPECT_THAT(Error(Lines({"models:", "  - name: \"a\\tb\"", "    path: x"})),
              HasSubstr("character '\\x09' is not allowed"));
  EXPECT_THAT(Error(Lines({"models:", "  - name: ''", "    path: x"})),
              HasSubstr("test.yaml:2:11: models[0].name: model name must not "
                        "be empty"));
  EXPECT_THAT(Error(Model({"    variants: [{name: 'int 8'}]"})),
              HasSubstr("test.yaml:4:23: models[0].variants[0].name: invalid "
                        "variant name \"int 8\""));
}

TEST_F(ServerConfigTest, MissingRequiredKeys) {
  EXPECT_EQ(Error(Lines({"server: {}"})),
            "test.yaml:1:1: models: required key is missing");
  EXPECT_EQ(Error(Lines({"models: []"})),
            "test.yaml:1:9: models: at least one model is required");
  EXPECT_EQ(Error(Lines({"models:"})),
            "test.yaml:1:1: models: expected a list of models, got null "
            "(an empty value)");
  EXPECT_EQ(Error(Lines({"models:", "  - path: model.onnx"})),
            "test.yaml:2:5: models[0].name: required key is missing");
  EXPECT_EQ(Error(Lines({"models:", "  - name: m"})),
            "test.yaml:2:5: models[0].path: required key is missing");
  EXPECT_THAT(Error(Lines({"models:", "  -", "  - name: m"})),
              HasSubstr("test.yaml:2:3: models[0].name: required key is "
                        "missing"));
  EXPECT_EQ(Error(Model({"    evaluation:", "      labels: b"})),
            "test.yaml:5:7: models[0].evaluation.inputs: required key is "
            "missing");
  EXPECT_EQ(Error(Model({"    evaluation: {inputs: a}"})),
            "test.yaml:4:17: models[0].evaluation.labels: required key is "
            "missing");
  EXPECT_EQ(Error(Model({"    variants: []"})),
            "test.yaml:4:15: models[0].variants: at least one variant is "
            "required");
  EXPECT_EQ(Error(Model({"    variants: [{}]"})),
            "test.yaml:4:16: models[0].variants[0].name: required key is "
            "missing");
  EXPECT_THAT(Error(Lines({"models:", "  - name: m", "    path: ''"})),
              HasSubstr("test.yaml:3:11: models[0].path: path must not be "
                        "empty"));
  EXPECT_THAT(Error(Lines({"models:", "  - name: m", "    path: \"a\\0b\""})),
              HasSubstr("test.yaml:3:11: models[0].path: path must not "
                        "contain NUL characters"));
}

TEST_F(ServerConfigTest, ModelPathMustExist) {
  const std::string resolved = (dir_ / "missing.onnx").string();
  EXPECT_EQ(Error(Lines({"models:", "  - name: m", "    path: missing.onnx"})),
            absl::StrCat("test.yaml:3:11: models[0].path: model file \"",
                         resolved, "\" does not exist"));
  EXPECT_THAT(Error(Lines({"models:", "  - name: m", "    path: ."})),
              HasSubstr("is a directory, not a file"));
}

TEST_F(ServerConfigTest, DefaultVariantMustNameAVariant) {
  EXPECT_EQ(Error(Model({"    default_variant: int8"})),
            "test.yaml:4:22: models[0].default_variant: \"int8\" names no "
            "variant of model \"m\" (variants: fp32)");
  EXPECT_THAT(Error(Model({"    default_variant: c",
                           "    variants: [{name: a}, {name: b}]"})),
              HasSubstr("(variants: a, b)"));
}

TEST_F(ServerConfigTest, BadEnumValueListsTheAllowedOnes) {
  EXPECT_EQ(Error(Model({"    evaluation:", "      format: csv",
                         "      inputs: a", "      labels: b"})),
            "test.yaml:5:15: models[0].evaluation.format: value \"csv\" is not "
            "allowed (allowed: idx, npy)");
  EXPECT_THAT(Error(Model({"    evaluation:", "      format: [idx]"})),
              HasSubstr("expected one of idx, npy, got a list"));
}

TEST_F(ServerConfigTest, Addresses) {
  auto server = [](const char* line) {
    return Lines({"server:", line, "models: [{name: m, path: model.onnx}]"});
  };
  EXPECT_TRUE(Parse(server("  grpc_address: unix:/tmp/qs.sock")).ok());
  EXPECT_TRUE(Parse(server("  grpc_address: '[::]:0'")).ok());
  EXPECT_TRUE(Parse(server("  metrics_address: localhost:65535")).ok());
  EXPECT_EQ(Error(server("  grpc_address: 0.0.0.0")),
            "test.yaml:2:17: server.grpc_address: invalid address \"0.0.0.0\"; "
            "expected host:port (e.g. 0.0.0.0:8500) or unix:PATH");
  EXPECT_THAT(Error(server("  metrics_address: host:65536")),
              HasSubstr("test.yaml:2:20: server.metrics_address: invalid port "
                        "\"65536\" in \"host:65536\" (allowed: 0..65535)"));
  EXPECT_THAT(Error(server("  metrics_address: unix:/tmp/m.sock")),
              HasSubstr("invalid port"));
  EXPECT_THAT(Error(server("  grpc_address: ::1:8500")),
              HasSubstr("IPv6 hosts must be bracketed"));
  EXPECT_THAT(Error(server("  grpc_address: ''")),
              HasSubstr("address must not be empty"));
  EXPECT_THAT(Error(server("  grpc_address: 'a b:1'")),
              HasSubstr("must not contain whitespace"));
}

// Every prefix of a valid config, and many random corruptions of it, either
// parse or fail with a well-formed InvalidArgument; none may crash.
TEST_F(ServerConfigTest, TruncatedAndCorruptedConfigsNeverCrash) {
  const std::string full = FullConfig();
  for (size_t n = 0; n <= full.size(); ++n) {
    absl::StatusOr<ServerConfig> config = Parse(full.substr(0, n));
    if (!config.ok()) {
      EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(config.status().message()),
                  MatchesRegex("test\\.yaml:[0-9]+:[0-9]+: .+"))
          << "prefix of " << n << " bytes";
    }
  }
  std::mt19937 rng(1234);
  const std::string alphabet = "{}[]:,-?&*!|>'\"#%@` \n\t0aZ.\\\x80\xff";
  for (int i = 0; i < 2000; ++i) {
    std::string text = full;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % text.size();
      text[pos] = alphabet[rng() % alphabet.size()];
    }
    absl::StatusOr<ServerConfig> config = Parse(text);
    if (!config.ok()) {
      EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(config.status().message()),
                  MatchesRegex("test\\.yaml:[0-9]+:[0-9]+: .+"))
          << text;
    }
  }
}

std::string ReadShippedConfig() {
  std::ifstream in(std::string(QS_SOURCE_DIR) + "/config/quantserve.yaml");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The shipped config's shape, with its model and base directory mocked up
// under a temp dir so that it does not depend on the trained model.
TEST_F(ServerConfigTest, ShippedConfigParses) {
  const std::string text = ReadShippedConfig();
  ASSERT_FALSE(text.empty());
  WriteFile(dir_ / "models" / "fmnist_cnn.onnx", "x");
  absl::StatusOr<ServerConfig> config = ParseServerConfig(
      text, "config/quantserve.yaml", (dir_ / "config").string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "0.0.0.0:8500");
  EXPECT_EQ(config->server.metrics_address, "0.0.0.0:9090");
  EXPECT_EQ(config->server.worker_threads, 0);
  EXPECT_EQ(config->server.intra_op_threads, 1);
  EXPECT_EQ(config->server.max_message_bytes, 64 << 20);
  ASSERT_EQ(config->models.size(), 1u);
  const ModelConfig& m = config->models[0];
  EXPECT_EQ(m.name, "fmnist_cnn");
  EXPECT_EQ(m.path, (dir_ / "models" / "fmnist_cnn.onnx").string());
  EXPECT_EQ(m.default_variant, "w8a8");
  EXPECT_EQ(m.eval_batch_size, 64);
  ASSERT_TRUE(m.evaluation.has_value());
  EXPECT_EQ(m.evaluation->format, DatasetConfig::Format::kIdx);
  EXPECT_EQ(m.evaluation->inputs,
            "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(m.evaluation->labels,
            "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  EXPECT_FLOAT_EQ(m.evaluation->scale, 1.0f / 255.0f);
  EXPECT_FLOAT_EQ(m.evaluation->offset, 0.0f);
  EXPECT_EQ(m.evaluation->limit, 0);
  ASSERT_TRUE(m.calibration.has_value());
  EXPECT_EQ(m.calibration->inputs,
            "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
  EXPECT_EQ(m.calibration->limit, 1000);
  // The variants themselves are checked by quant_policy_test.
  ASSERT_EQ(m.variants.size(), 10u);
  EXPECT_EQ(m.variants[0].name, "fp32");
  EXPECT_FALSE(m.variants[0].quantized());
}

// The shipped config, loaded for real (needs the trained model).
TEST_F(ServerConfigTest, ShippedConfigLoads) {
  const fs::path model = fs::path(QS_SOURCE_DIR) / "models" / "fmnist_cnn.onnx";
  if (!fs::exists(model)) {
    GTEST_SKIP() << model << " does not exist yet";
  }
  absl::StatusOr<ServerConfig> config =
      LoadServerConfig(std::string(QS_SOURCE_DIR) + "/config/quantserve.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->models[0].path, model.lexically_normal().string());
}

}  // namespace
}  // namespace qs

namespace qs {
namespace {

TEST_F(ServerConfigTest, CalibrationInputsPerModelInput) {
  absl::StatusOr<ServerConfig> config = Parse(Model({
      "    calibration:",
      "      format: npy",
      "      inputs: {input_ids: ids.npy, attention_mask: /abs/mask.npy}",
      "    variants:",
      "      - name: w8",
      "        weights: {bits: 8}",
  }));
  ASSERT_TRUE(config.ok()) << config.status();
  const DatasetConfig& c = *config->models[0].calibration;
  EXPECT_EQ(c.inputs, "");
  ASSERT_EQ(c.named_inputs.size(), 2u);
  EXPECT_EQ(c.named_inputs[0].first, "input_ids");
  EXPECT_EQ(c.named_inputs[0].second, (dir_ / "ids.npy").string());
  EXPECT_EQ(c.named_inputs[1], (std::pair<std::string, std::string>{"attention_mask",
                                                                     "/abs/mask.npy"}));
}

TEST_F(ServerConfigTest, CalibrationInputsMapNeedsNpy) {
  EXPECT_THAT(Error(Model({"    calibration:", "      inputs: {a: a.npy}",
                           "    variants:", "      - name: w8", "        weights: {}"})),
              HasSubstr("models[0].calibration.inputs: a map of model inputs to files needs "
                        "format: npy"));
}

}  // namespace
}  // namespace qs
