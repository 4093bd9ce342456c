// The serving settings (server limits, TLS, NaN policy, batching) and the
// overrides from --set and the environment.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/server_config.h"
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

ConfigOverrides Set(std::initializer_list<const char*> args) {
  ConfigOverrides overrides;
  for (const char* arg : args) overrides.set.push_back(arg);
  return overrides;
}

ConfigOverrides Env(std::initializer_list<std::pair<const char*, const char*>>
                        vars) {
  ConfigOverrides overrides;
  for (const auto& [name, value] : vars) overrides.env[name] = value;
  return overrides;
}

class ServingConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("serving_config_test_", getpid(), "_", info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    WriteFile(dir_ / "model.onnx", "not really onnx");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  absl::StatusOr<ServerConfig> Parse(const std::string& yaml,
                                     const ConfigOverrides& overrides = {}) {
    return ParseServerConfig(yaml, "test.yaml", dir_.string(), overrides);
  }

  // The error message of a config that must fail with InvalidArgument.
  std::string Error(const std::string& yaml,
                    const ConfigOverrides& overrides = {}) {
    absl::StatusOr<ServerConfig> config = Parse(yaml, overrides);
    EXPECT_FALSE(config.ok()) << "parsed unexpectedly:\n" << yaml;
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << config.status();
    return std::string(config.status().message());
  }

  // A config with `server` lines (indented by the caller) and one model "m".
  std::string Server(std::initializer_list<const char*> lines) {
    std::string yaml = "server:\n";
    for (const char* line : lines) absl::StrAppend(&yaml, line, "\n");
    absl::StrAppend(&yaml, "models:\n  - name: m\n    path: model.onnx\n");
    return yaml;
  }

  // A minimal valid config with `extra` lines appended to the model.
  std::string Model(std::initializer_list<const char*> extra) {
    std::string yaml = Lines({"models:", "  - name: m", "    path: model.onnx"});
    for (const char* line : extra) absl::StrAppend(&yaml, line, "\n");
    return yaml;
  }

  fs::path dir_;
};

// ---------------------------------------------------------------------------
// Defaults and the new keys.

TEST_F(ServingConfigTest, Defaults) {
  absl::StatusOr<ServerConfig> config = Parse(Model({}));
  ASSERT_TRUE(config.ok()) << config.status();
  const ServerSection& s = config->server;
  EXPECT_EQ(s.shutdown_grace_ms, 30000);
  EXPECT_FALSE(s.access_log);
  EXPECT_FALSE(s.tls.has_value());
  EXPECT_EQ(s.max_tensor_elements, int64_t{1} << 26);
  EXPECT_EQ(s.max_batch_rows, 4096);
  EXPECT_EQ(s.nan_policy, NanPolicy::kReject);
  const BatchingConfig& b = config->models[0].batching;
  EXPECT_EQ(b.max_batch_size, 1);
  EXPECT_EQ(b.max_queue_delay_us, 500);
  EXPECT_EQ(b.max_queue_rows, 1024);
  EXPECT_EQ(b.workers, 0);  // automatic
  EXPECT_FALSE(b.warm_up);
  // Default-constructed structs agree with the loaded defaults.
  EXPECT_EQ(ServerSection().max_tensor_elements, s.max_tensor_elements);
  EXPECT_EQ(BatchingConfig().max_queue_rows, b.max_queue_rows);
}

TEST_F(ServingConfigTest, EmptySectionsMeanDefaults) {
  absl::StatusOr<ServerConfig> config =
      Parse(Server({"  tls:"}) + "    batching:\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->server.tls.has_value());
  EXPECT_EQ(config->models[0].batching.max_batch_size, 1);
  config = Parse(Model({"    batching: {}"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->models[0].batching.workers, 0);
}

TEST_F(ServingConfigTest, ParsesEveryServingKey) {
  WriteFile(dir_ / "tls" / "server.crt", "cert");
  WriteFile(dir_ / "tls" / "server.key", "key");
  WriteFile(dir_ / "ca.pem", "ca");
  absl::StatusOr<ServerConfig> config = Parse(absl::StrCat(
      Lines({
          "server:",
          "  shutdown_grace_ms: 5000",
          "  access_log: true",
          "  tls:",
          "    cert: tls/server.crt",
          "    key: ./tls/../tls/server.key",
      }),
      "    client_ca: ", (dir_ / "ca.pem").string(), "\n",
      Lines({
          "  max_tensor_elements: 2147483648",
          "  max_batch_rows: 1048576",
          "  nan_policy: allow",
          "models:",
          "  - name: m",
          "    path: model.onnx",
          "    batching: {max_batch_size: 32, max_queue_delay_us: 0,",
          "               max_queue_rows: 64, workers: 4, warm_up: true}",
          "  - name: n",
          "    path: model.onnx",
          "    batching:",
          "      max_batch_size: 4096",
          "      max_queue_delay_us: 1000000",
          "      max_queue_rows: 1048576",
          "      workers: 64",
      })));
  ASSERT_TRUE(config.ok()) << config.status();
  const ServerSection& s = config->server;
  EXPECT_EQ(s.shutdown_grace_ms, 5000);
  EXPECT_TRUE(s.access_log);
  ASSERT_TRUE(s.tls.has_value());
  EXPECT_EQ(s.tls->cert_file, (dir_ / "tls" / "server.crt").string());
  EXPECT_EQ(s.tls->key_file, (dir_ / "tls" / "server.key").string());
  EXPECT_EQ(s.tls->client_ca_file, (dir_ / "ca.pem").string());
  EXPECT_EQ(s.max_tensor_elements, int64_t{1} << 31);
  EXPECT_EQ(s.max_batch_rows, 1 << 20);
  EXPECT_EQ(s.nan_policy, NanPolicy::kAllow);
  const BatchingConfig& m = config->models[0].batching;
  EXPECT_EQ(m.max_batch_size, 32);
  EXPECT_EQ(m.max_queue_delay_us, 0);
  EXPECT_EQ(m.max_queue_rows, 64);
  EXPECT_EQ(m.workers, 4);
  EXPECT_TRUE(m.warm_up);
  const BatchingConfig& n = config->models[1].batching;
  EXPECT_EQ(n.max_batch_size, 4096);
  EXPECT_EQ(n.max_queue_delay_us, 1000000);
  EXPECT_EQ(n.max_queue_rows, 1 << 20);
  EXPECT_EQ(n.workers, 64);
  EXPECT_FALSE(n.warm_up);
}

TEST_F(ServingConfigTest, TlsWithoutClientCaIsServerOnly) {
  WriteFile(dir_ / "c.pem", "c");
  WriteFile(dir_ / "k.pem", "k");
  absl::StatusOr<ServerConfig> config =
      Parse(Server({"  tls: {cert: c.pem, key: k.pem}"}));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->server.tls.has_value());
  EXPECT_EQ(config->server.tls->client_ca_file, "");
}

TEST_F(ServingConfigTest, NanPolicyEnum) {
  EXPECT_EQ(Parse(Server({"  nan_policy: reject"}))->server.nan_policy,
            NanPolicy::kReject);
  EXPECT_EQ(Parse(Server({"  nan_policy: allow"}))->server.nan_policy,
            NanPolicy::kAllow);
  EXPECT_STREQ(NanPolicyName(NanPolicy::kReject), "reject");
  EXPECT_STREQ(NanPolicyName(NanPolicy::kAllow), "allow");
  EXPECT_EQ(Error(Server({"  nan_policy: ignore"})),
            "test.yaml:2:15: server.nan_policy: value \"ignore\" is not "
            "allowed (allowed: reject, allow)");
  // Case-sensitive, like every enum.
  EXPECT_THAT(Error(Server({"  nan_policy: Reject"})),
              HasSubstr("value \"Reject\" is not allowed (allowed: reject, "
                        "allow)"));
  EXPECT_THAT(Error(Server({"  nan_policy: [reject]"})),
              HasSubstr("test.yaml:2:15: server.nan_policy: expected one of "
                        "reject, allow, got a list"));
}

TEST_F(ServingConfigTest, WarmUpIsABool) {
  EXPECT_THAT(Error(Model({"    batching: {max_batch_size: 8, warm_up: 1}"})),
              HasSubstr("batching.warm_up: expected true or false, got \"1\""));
}

TEST_F(ServingConfigTest, AccessLogIsABool) {
  EXPECT_EQ(Error(Server({"  access_log: yes"})),
            "test.yaml:2:15: server.access_log: expected true or false, got "
            "\"yes\"");
  EXPECT_TRUE(Parse(Server({"  access_log: True"}))->server.access_log);
}

// ---------------------------------------------------------------------------
// Ranges: every bound, with position, key path and the allowed range.

TEST_F(ServingConfigTest, ServerRangeErrors) {
  struct Case {
    const char* line;
    const char* expected;
  };
  const Case cases[] = {
      {"  shutdown_grace_ms: -1",
       "test.yaml:2:22: server.shutdown_grace_ms: value -1 is out of range "
       "(allowed: 0..600000)"},
      {"  shutdown_grace_ms: 600001",
       "test.yaml:2:22: server.shutdown_grace_ms: value 600001 is out of "
       "range (allowed: 0..600000)"},
      {"  max_tensor_elements: 0",
       "test.yaml:2:24: server.max_tensor_elements: value 0 is out of range "
       "(allowed: 1..2147483648)"},
      {"  max_tensor_elements: 2147483649",
       "test.yaml:2:24: server.max_tensor_elements: value 2147483649 is out "
       "of range (allowed: 1..2147483648)"},
      {"  max_batch_rows: 0",
       "test.yaml:2:19: server.max_batch_rows: value 0 is out of range "
       "(allowed: 1..1048576)"},
      {"  max_batch_rows: 1048577",
       "test.yaml:2:19: server.max_batch_rows: value 1048577 is out of range "
       "(allowed: 1..1048576)"},
      {"  max_batch_rows: 1.5",
       "test.yaml:2:19: server.max_batch_rows: expected an integer, got "
       "\"1.5\""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Error(Server({c.line})), c.expected) << c.line;
  }
  // The bounds themselves are allowed.
  for (const char* line :
       {"  shutdown_grace_ms: 0", "  shutdown_grace_ms: 600000",
        "  max_tensor_elements: 1", "  max_batch_rows: 1"}) {
    EXPECT_TRUE(Parse(Server({line})).ok()) << line;
  }
}

TEST_F(ServingConfigTest, BatchingRangeErrors) {
  struct Case {
    const char* line;
    const char* expected;
  };
  const Case cases[] = {
      {"    batching: {max_batch_size: 0}",
       "test.yaml:4:32: models[0].batching.max_batch_size: value 0 is out of "
       "range (allowed: 1..4096)"},
      {"    batching: {max_batch_size: 4097}",
       "test.yaml:4:32: models[0].batching.max_batch_size: value 4097 is out "
       "of range (allowed: 1..4096)"},
      {"    batching: {max_queue_delay_us: -1}",
       "test.yaml:4:36: models[0].batching.max_queue_delay_us: value -1 is "
       "out of range (allowed: 0..1000000)"},
      {"    batching: {max_queue_delay_us: 1000001}",
       "test.yaml:4:36: models[0].batching.max_queue_delay_us: value 1000001 "
       "is out of range (allowed: 0..1000000)"},
      {"    batching: {max_queue_rows: 0}",
       "test.yaml:4:32: models[0].batching.max_queue_rows: value 0 is out of "
       "range (allowed: 1..1048576)"},
      {"    batching: {max_queue_rows: 1048577}",
       "test.yaml:4:32: models[0].batching.max_queue_rows: value 1048577 is "
       "out of range (allowed: 1..1048576)"},
      {"    batching: {workers: -1}",
       "test.yaml:4:25: models[0].batching.workers: value -1 is out of range "
       "(allowed: 0..64)"},
      {"    batching: {workers: 65}",
       "test.yaml:4:25: models[0].batching.workers: value 65 is out of range "
       "(allowed: 0..64)"},
      {"    batching: {max_batch_size: 32, max_queue_rows: 16}",
       "test.yaml:4:52: models[0].batching.max_queue_rows: value 16 is less "
       "than max_batch_size (32), so a full batch could never be queued "
       "(allowed: 32..1048576)"},
      {"    batching: {max_batch_size: 2048}",
       "test.yaml:4:32: models[0].batching.max_batch_size: value 2048 exceeds "
       "max_queue_rows (1024 by default), so a full batch could never be "
       "queued; raise max_queue_rows to at least 2048"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Error(Model({c.line})), c.expected) << c.line;
  }
  EXPECT_EQ(Error(Model({"    batching: {max_batch: 8}"})),
            "test.yaml:4:16: models[0].batching.max_batch: unknown key "
            "(allowed: max_batch_size, max_queue_delay_us, max_queue_rows, "
            "workers, warm_up)");
  EXPECT_EQ(Error(Model({"    batching: 32"})),
            "test.yaml:4:15: models[0].batching: expected batching settings "
            "(a map), got a scalar");
  EXPECT_TRUE(Parse(Model({"    batching: {max_batch_size: 16, "
                           "max_queue_rows: 16}"}))
                  .ok());
}

// ---------------------------------------------------------------------------
// TLS files.

TEST_F(ServingConfigTest, TlsFilesMustExist) {
  WriteFile(dir_ / "c.pem", "c");
  WriteFile(dir_ / "k.pem", "k");
  EXPECT_EQ(Error(Server({"  tls:", "    cert: certs/missing.crt",
                          "    key: k.pem"})),
            absl::StrCat("test.yaml:3:11: server.tls.cert: TLS certificate "
                         "file \"",
                         (dir_ / "certs" / "missing.crt").string(),
                         "\" does not exist"));
  EXPECT_EQ(Error(Server({"  tls: {cert: c.pem, key: ../k.pem}"})),
            absl::StrCat("test.yaml:2:27: server.tls.key: TLS private key "
                         "file \"",
                         (dir_.parent_path() / "k.pem").string(),
                         "\" does not exist"));
  EXPECT_EQ(Error(Server({"  tls: {cert: c.pem, key: k.pem, client_ca: ca.pem}"})),
            absl::StrCat("test.yaml:2:45: server.tls.client_ca: TLS client CA "
                         "file \"",
                         (dir_ / "ca.pem").string(), "\" does not exist"));
  EXPECT_THAT(Error(Server({"  tls: {cert: ., key: k.pem}"})),
              HasSubstr(absl::StrCat("server.tls.cert: TLS certificate path \"",
                                     dir_.string(),
                                     "/\" is a directory, not a file")));
}

TEST_F(ServingConfigTest, TlsKeysAreChecked) {
  WriteFile(dir_ / "c.pem", "c");
  EXPECT_EQ(Error(Server({"  tls: {cert: c.pem}"})),
            "test.yaml:2:8: server.tls.key: required key is missing");
  EXPECT_EQ(Error(Server({"  tls: {}"})),
            "test.yaml:2:8: server.tls.cert: required key is missing");
  EXPECT_EQ(Error(Server({"  tls: {cert: c.pem, key: c.pem, ca: c.pem}"})),
            "test.yaml:2:34: server.tls.ca: unknown key (allowed: cert, key, "
            "client_ca)");
  EXPECT_EQ(Error(Server({"  tls: true"})),
            "test.yaml:2:8: server.tls: expected TLS settings (a map), got a "
            "scalar");
  EXPECT_THAT(Error(Server({"  tls: {cert: '', key: c.pem}"})),
              HasSubstr("server.tls.cert: path must not be empty"));
}

// ---------------------------------------------------------------------------
// --set.

TEST_F(ServingConfigTest, SetServerKeys) {
  absl::StatusOr<ServerConfig> config = Parse(
      Server({"  grpc_address: 127.0.0.1:1", "  intra_op_threads: 4"}),
      Set({"server.grpc_address=0.0.0.0:9000", "server.intra_op_threads=2",
           "server.access_log=true", "server.nan_policy=allow",
           "server.shutdown_grace_ms=0", "server.max_tensor_elements=1024"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "0.0.0.0:9000");
  EXPECT_EQ(config->server.intra_op_threads, 2);
  EXPECT_TRUE(config->server.access_log);
  EXPECT_EQ(config->server.nan_policy, NanPolicy::kAllow);
  EXPECT_EQ(config->server.shutdown_grace_ms, 0);
  EXPECT_EQ(config->server.max_tensor_elements, 1024);
  // Untouched keys keep the file's values or the defaults.
  EXPECT_EQ(config->server.metrics_address, "0.0.0.0:9090");
}

TEST_F(ServingConfigTest, SetCreatesMissingSections) {
  // No `server` section at all.
  absl::StatusOr<ServerConfig> config =
      Parse(Model({}), Set({"server.worker_threads=3"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.worker_threads, 3);
  // `server:` present but empty.
  config = Parse(Lines({"server:", "models: [{name: m, path: model.onnx}]"}),
                 Set({"server.worker_threads=5"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.worker_threads, 5);
}

TEST_F(ServingConfigTest, SetTlsPathsResolveAgainstTheConfigDirectory) {
  WriteFile(dir_ / "c.pem", "c");
  WriteFile(dir_ / "k.pem", "k");
  absl::StatusOr<ServerConfig> config =
      Parse(Model({}), Set({"server.tls.cert=c.pem", "server.tls.key=k.pem"}));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->server.tls.has_value());
  EXPECT_EQ(config->server.tls->cert_file, (dir_ / "c.pem").string());
  EXPECT_EQ(config->server.tls->key_file, (dir_ / "k.pem").string());
  // A partial tls section from --set is checked like one in the file.
  EXPECT_EQ(Error(Model({}), Set({"server.tls.cert=c.pem"})),
            "--set server.tls.cert=c.pem: server.tls.key: required key is "
            "missing");
  EXPECT_EQ(Error(Model({}), Set({"server.tls.cert=nope.pem",
                                  "server.tls.key=k.pem"})),
            absl::StrCat("--set server.tls.cert=nope.pem: server.tls.cert: "
                         "TLS certificate file \"",
                         (dir_ / "nope.pem").string(), "\" does not exist"));
}

const char* const kTwoModels[] = {
    "models:",                               // 1
    "  - name: fmnist_cnn",                  // 2
    "    path: model.onnx",                  // 3
    "    evaluation:",                       // 4
    "      inputs: x.gz",                    // 5
    "      labels: y.gz",                    // 6
    "      limit: 10",                       // 7
    "    calibration: {inputs: c.gz}",       // 8
    "    variants:",                         // 9
    "      - name: fp32",                    // 10
    "      - name: int8",                    // 11
    "        weights: {bits: 8}",            // 12
    "      - name: mixed",                   // 13
    "        weights: {bits: 4}",            // 14
    "        layers:",                       // 15
    "          - match: {op: Conv}",         // 16
    "            weights: {bits: 8}",        // 17
    "  - name: other.model-2",               // 18
    "    path: model.onnx",                  // 19
    "    batching: {max_batch_size: 8}",     // 20
};

std::string TwoModels() {
  std::string yaml;
  for (const char* line : kTwoModels) absl::StrAppend(&yaml, line, "\n");
  return yaml;
}

TEST_F(ServingConfigTest, SetModelKeysByModelName) {
  absl::StatusOr<ServerConfig> config = Parse(
      TwoModels(),
      Set({"models.fmnist_cnn.default_variant=int8",
           "models.fmnist_cnn.batching.max_batch_size=16",
           "models.fmnist_cnn.evaluation.limit=100",
           "models.fmnist_cnn.eval_batch_size=32",
           "models.other.model-2.batching.workers=2",
           "models.fmnist_cnn.variants.int8.activations.bits=6",
           "models.fmnist_cnn.variants.mixed.layers.0.weights.bits=2"}));
  ASSERT_TRUE(config.ok()) << config.status();
  const ModelConfig& a = config->models[0];
  EXPECT_EQ(a.default_variant, "int8");
  EXPECT_EQ(a.batching.max_batch_size, 16);
  EXPECT_EQ(a.batching.max_queue_delay_us, 500);
  ASSERT_TRUE(a.evaluation.has_value());
  EXPECT_EQ(a.evaluation->limit, 100);
  EXPECT_EQ(a.evaluation->inputs, (dir_ / "x.gz").string());
  EXPECT_EQ(a.eval_batch_size, 32);
  ASSERT_EQ(a.variants.size(), 3u);
  ASSERT_TRUE(a.variants[1].activations.has_value());
  EXPECT_EQ(a.variants[1].activations->bits, 6);
  ASSERT_EQ(a.variants[2].layers.size(), 1u);
  ASSERT_TRUE(a.variants[2].layers[0].weights.has_value());
  EXPECT_EQ(a.variants[2].layers[0].weights->bits, 2);
  // The model whose name contains dots.
  const ModelConfig& b = config->models[1];
  EXPECT_EQ(b.batching.max_batch_size, 8);
  EXPECT_EQ(b.batching.workers, 2);
  EXPECT_EQ(b.default_variant, "fp32");
}

TEST_F(ServingConfigTest, SetValuesAreYamlScalars) {
  absl::StatusOr<ServerConfig> config = Parse(
      TwoModels(),
      Set({"server.grpc_address='[::]:9000'", "server.access_log=TRUE",
           "models.fmnist_cnn.evaluation.scale=0.5",
           "models.fmnist_cnn.eval_batch_size=\"16\""}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "[::]:9000");
  EXPECT_TRUE(config->server.access_log);
  EXPECT_FLOAT_EQ(config->models[0].evaluation->scale, 0.5f);
  EXPECT_EQ(config->models[0].eval_batch_size, 16);
  // Text YAML would read as a list is taken literally.
  config = Parse(Model({}), Set({"server.grpc_address=[::]:9000"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "[::]:9000");
  // null removes an optional section.
  config = Parse(TwoModels(), Set({"models.fmnist_cnn.evaluation=null"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->models[0].evaluation.has_value());
  // ... and is an error where a value is needed.
  EXPECT_EQ(Error(Model({}), Set({"server.worker_threads="})),
            "--set server.worker_threads=: server.worker_threads: expected an "
            "integer, got null (an empty value)");
  EXPECT_EQ(Error(Model({}), Set({"server.worker_threads=~"})),
            "--set server.worker_threads=~: server.worker_threads: expected "
            "an integer, got null (an empty value)");
}

TEST_F(ServingConfigTest, SetErrorsNameTheArgument) {
  EXPECT_EQ(Error(Model({}), Set({"server.worker_threads=abc"})),
            "--set server.worker_threads=abc: server.worker_threads: expected "
            "an integer, got \"abc\"");
  EXPECT_EQ(Error(Model({}), Set({"server.worker_threads=2000"})),
            "--set server.worker_threads=2000: server.worker_threads: value "
            "2000 is out of range (allowed: 0..1024)");
  EXPECT_EQ(Error(Model({}), Set({"models.m.batching.max_batch_size=0"})),
            "--set models.m.batching.max_batch_size=0: "
            "models[0].batching.max_batch_size: value 0 is out of range "
            "(allowed: 1..4096)");
  EXPECT_EQ(Error(Model({}), Set({"server.nan_policy=drop"})),
            "--set server.nan_policy=drop: server.nan_policy: value \"drop\" "
            "is not allowed (allowed: reject, allow)");
  EXPECT_EQ(Error(Model({}), Set({"models.m.default_variant=int8"})),
            "--set models.m.default_variant=int8: models[0].default_variant: "
            "\"int8\" names no variant of model \"m\" (variants: fp32)");
  EXPECT_EQ(Error(Model({}), Set({"models.m.path=gone.onnx"})),
            absl::StrCat("--set models.m.path=gone.onnx: models[0].path: "
                         "model file \"",
                         (dir_ / "gone.onnx").string(), "\" does not exist"));
  // Errors in the file are still reported at their position.
  EXPECT_EQ(Error(Model({"    eval_batch_size: 0"}),
                  Set({"server.worker_threads=1"})),
            "test.yaml:4:22: models[0].eval_batch_size: value 0 is out of "
            "range (allowed: 1..4096)");
}

TEST_F(ServingConfigTest, SetUnknownKeysListTheAllowedOnes) {
  EXPECT_EQ(Error(Model({}), Set({"server.workers=4"})),
            "--set server.workers=4: server.workers: unknown key (allowed: "
            "grpc_address, metrics_address, worker_threads, intra_op_threads, "
            "max_message_bytes, shutdown_grace_ms, access_log, tls, "
            "max_tensor_elements, max_batch_rows, nan_policy, watch_config_ms, model_roots, data_roots, max_connection_age_ms, max_concurrent_calls, activation_cache_mb)");
  EXPECT_EQ(Error(Model({}), Set({"server.acess_log=true"})),
            "--set server.acess_log=true: server.acess_log: unknown key "
            "(allowed: grpc_address, metrics_address, worker_threads, "
            "intra_op_threads, max_message_bytes, shutdown_grace_ms, "
            "access_log, tls, max_tensor_elements, max_batch_rows, "
            "nan_policy, watch_config_ms, model_roots, data_roots, max_connection_age_ms, max_concurrent_calls, activation_cache_mb); did you mean \"access_log\"?");
  EXPECT_EQ(Error(Model({}), Set({"sever.worker_threads=4"})),
            "--set sever.worker_threads=4: sever: unknown key (allowed: "
            "server, models); did you mean \"server\"?");
  EXPECT_EQ(Error(Model({}), Set({"models.m.batching.size=4"})),
            "--set models.m.batching.size=4: models[0].batching.size: unknown "
            "key (allowed: max_batch_size, max_queue_delay_us, "
            "max_queue_rows, workers, warm_up)");
  EXPECT_THAT(Error(Model({}), Set({"models.m.batchng.workers=4"})),
              HasSubstr("--set models.m.batchng.workers=4: "
                        "models[0].batchng: unknown key (allowed: name, path, "
                        "default_variant, eval_batch_size, evaluation, "
                        "calibration, variants, batching, drift); did you mean "
                        "\"batching\"?"));
}

TEST_F(ServingConfigTest, SetUnknownModelOrVariantListsTheNames) {
  EXPECT_EQ(Error(TwoModels(), Set({"models.fmnist.path=x.onnx"})),
            "--set models.fmnist.path=x.onnx: models: no model named "
            "\"fmnist\" (models: fmnist_cnn, other.model-2)");
  EXPECT_EQ(Error(TwoModels(),
                  Set({"models.fmnist_cnn.variants.int4.weights.bits=4"})),
            "--set models.fmnist_cnn.variants.int4.weights.bits=4: "
            "models[0].variants: no variant named \"int4\" (variants: fp32, "
            "int8, mixed)");
  EXPECT_EQ(Error(TwoModels(),
                  Set({"models.fmnist_cnn.variants.mixed.layers.1.fp32=true"})),
            "--set models.fmnist_cnn.variants.mixed.layers.1.fp32=true: "
            "models[0].variants[2].layers: no item \"1\" in this list (its 1 "
            "items are selected by their 0-based index)");
}

TEST_F(ServingConfigTest, SetMalformedArguments) {
  EXPECT_EQ(Error(Model({}), Set({"server.worker_threads"})),
            "--set server.worker_threads: expected key.path=value, e.g. "
            "server.worker_threads=4 or models.fmnist_cnn.default_variant=w8a8");
  EXPECT_THAT(Error(Model({}), Set({"=4"})),
              StartsWith("--set =4: expected key.path=value"));
  EXPECT_EQ(Error(Model({}), Set({"models[0].path=x"})),
            "--set models[0].path=x: invalid key path \"models[0].path\" (at "
            "\"models[0]\"): expected dotted keys with list items selected by "
            "name, e.g. models.fmnist_cnn.batching.workers");
  EXPECT_THAT(Error(Model({}), Set({"server..worker_threads=1"})),
              StartsWith("--set server..worker_threads=1: invalid key path"));
  EXPECT_EQ(Error(Model({}), Set({"models.m=x"})),
            "--set models.m=x: models[0]: a whole list item cannot be "
            "replaced; set its keys one by one");
  EXPECT_EQ(Error(Model({}), Set({"models.m.name=n"})),
            "--set models.m.name=n: models[0].name: cannot be overridden "
            "(models are selected by their name)");
  // A key below a value that is not a map.
  EXPECT_EQ(Error(Model({"    eval_batch_size: 8"}),
                  Set({"models.m.eval_batch_size.x=1"})),
            "--set models.m.eval_batch_size.x=1: models[0].eval_batch_size.x: "
            "cannot be set: models[0].eval_batch_size is a scalar, not a map");
  // Replacing a section by a scalar fails where the section is read.
  EXPECT_EQ(Error(Model({}), Set({"server=8"})),
            "--set server=8: server: expected the server section (a map), got "
            "a scalar");
}

TEST_F(ServingConfigTest, LaterSetWins) {
  absl::StatusOr<ServerConfig> config =
      Parse(Model({}), Set({"server.worker_threads=abc",
                            "server.worker_threads=7"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.worker_threads, 7);
}

// Overrides never write into the document: a shared (aliased) section
// changes only where it was overridden.
TEST_F(ServingConfigTest, SetDoesNotChangeAliasedSections) {
  absl::StatusOr<ServerConfig> config = Parse(
      Lines({"models:",
             "  - {name: a, path: model.onnx, batching: &b {max_batch_size: 8}}",
             "  - {name: b, path: model.onnx, batching: *b}"}),
      Set({"models.a.batching.max_batch_size=16"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->models[0].batching.max_batch_size, 16);
  EXPECT_EQ(config->models[1].batching.max_batch_size, 8);
}

// ---------------------------------------------------------------------------
// Environment.

TEST_F(ServingConfigTest, EnvironmentOverrides) {
  absl::StatusOr<ServerConfig> config = Parse(
      Model({}), Env({{"QUANTSERVE_GRPC_ADDRESS", "[::]:8600"},
                      {"QUANTSERVE_METRICS_ADDRESS", "127.0.0.1:9100"},
                      {"QUANTSERVE_WORKER_THREADS", "12"},
                      {"QUANTSERVE_INTRA_OP_THREADS", "0"},
                      {"QUANTSERVE_LOG_ACCESS", "true"},
                      {"HOME", "/root"},
                      {"QUANTSERVE_SOMETHING_ELSE", "ignored"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "[::]:8600");  // literal, not YAML
  EXPECT_EQ(config->server.metrics_address, "127.0.0.1:9100");
  EXPECT_EQ(config->server.worker_threads, 12);
  EXPECT_EQ(config->server.intra_op_threads, 0);
  EXPECT_TRUE(config->server.access_log);
}

TEST_F(ServingConfigTest, EmptyEnvironmentVariablesAreIgnored) {
  absl::StatusOr<ServerConfig> config =
      Parse(Server({"  worker_threads: 4"}),
            Env({{"QUANTSERVE_WORKER_THREADS", ""},
                 {"QUANTSERVE_LOG_ACCESS", ""}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.worker_threads, 4);
  EXPECT_FALSE(config->server.access_log);
}

TEST_F(ServingConfigTest, EnvironmentErrorsNameTheVariable) {
  EXPECT_EQ(Error(Model({}), Env({{"QUANTSERVE_WORKER_THREADS", "abc"}})),
            "env QUANTSERVE_WORKER_THREADS=abc: server.worker_threads: "
            "expected an integer, got \"abc\"");
  EXPECT_EQ(Error(Model({}), Env({{"QUANTSERVE_INTRA_OP_THREADS", "-1"}})),
            "env QUANTSERVE_INTRA_OP_THREADS=-1: server.intra_op_threads: "
            "value -1 is out of range (allowed: 0..1024)");
  EXPECT_EQ(Error(Model({}), Env({{"QUANTSERVE_LOG_ACCESS", "1"}})),
            "env QUANTSERVE_LOG_ACCESS=1: server.access_log: expected true or "
            "false, got \"1\"");
  EXPECT_EQ(Error(Model({}), Env({{"QUANTSERVE_METRICS_ADDRESS", "unix:/x"}})),
            "env QUANTSERVE_METRICS_ADDRESS=unix:/x: server.metrics_address: "
            "invalid port \"/x\" in \"unix:/x\" (allowed: 0..65535)");
  EXPECT_EQ(Error(Model({}), Env({{"QUANTSERVE_GRPC_ADDRESS", "8500"}})),
            "env QUANTSERVE_GRPC_ADDRESS=8500: server.grpc_address: invalid "
            "address \"8500\"; expected host:port (e.g. 0.0.0.0:8500) or "
            "unix:PATH");
}

TEST_F(ServingConfigTest, PrecedenceFileThenEnvironmentThenSet) {
  const std::string file = Server({"  worker_threads: 1", "  intra_op_threads: 1",
                                   "  grpc_address: 127.0.0.1:1"});
  ConfigOverrides overrides = Env({{"QUANTSERVE_WORKER_THREADS", "2"},
                                   {"QUANTSERVE_INTRA_OP_THREADS", "2"}});
  overrides.set = {"server.worker_threads=3"};
  absl::StatusOr<ServerConfig> config = Parse(file, overrides);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.worker_threads, 3);    // --set
  EXPECT_EQ(config->server.intra_op_threads, 2);  // env
  EXPECT_EQ(config->server.grpc_address, "127.0.0.1:1");  // file
  // A bad environment value overridden by --set is never read.
  overrides = Env({{"QUANTSERVE_WORKER_THREADS", "lots"}});
  overrides.set = {"server.worker_threads=6"};
  config = Parse(file, overrides);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.worker_threads, 6);
}

TEST_F(ServingConfigTest, LoadServerConfigAppliesOverrides) {
  const fs::path file = dir_ / "etc" / "qs.yaml";
  WriteFile(dir_ / "models" / "net.onnx", "x");
  WriteFile(file, Lines({"server:", "  worker_threads: 1", "models:",
                         "  - name: m", "    path: ../models/net.onnx"}));
  ConfigOverrides overrides = Env({{"QUANTSERVE_LOG_ACCESS", "true"}});
  overrides.set = {"models.m.batching.max_batch_size=4",
                   "models.m.path=../models/net.onnx"};
  absl::StatusOr<ServerConfig> config =
      LoadServerConfig(file.string(), overrides);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->server.access_log);
  EXPECT_EQ(config->models[0].batching.max_batch_size, 4);
  // Relative override paths resolve against the config file's directory.
  EXPECT_EQ(config->models[0].path, (dir_ / "models" / "net.onnx").string());
  // Without overrides (the old signature) the file's values stand.
  config = LoadServerConfig(file.string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->server.access_log);
  EXPECT_EQ(config->models[0].batching.max_batch_size, 1);
}

TEST_F(ServingConfigTest, OverridesFromProcessReadsTheEnvironment) {
  ASSERT_EQ(setenv("QUANTSERVE_GRPC_ADDRESS", "0.0.0.0:7000", 1), 0);
  ASSERT_EQ(setenv("QUANTSERVE_LOG_ACCESS", "true", 1), 0);
  ASSERT_EQ(unsetenv("QUANTSERVE_WORKER_THREADS"), 0);
  ASSERT_EQ(unsetenv("QUANTSERVE_METRICS_ADDRESS"), 0);
  ASSERT_EQ(unsetenv("QUANTSERVE_INTRA_OP_THREADS"), 0);
  const ConfigOverrides overrides =
      OverridesFromProcess({"server.worker_threads=2"});
  unsetenv("QUANTSERVE_GRPC_ADDRESS");
  unsetenv("QUANTSERVE_LOG_ACCESS");
  EXPECT_EQ(overrides.set, std::vector<std::string>{"server.worker_threads=2"});
  EXPECT_EQ(overrides.env,
            (std::map<std::string, std::string>{
                {"QUANTSERVE_GRPC_ADDRESS", "0.0.0.0:7000"},
                {"QUANTSERVE_LOG_ACCESS", "true"}}));
  absl::StatusOr<ServerConfig> config = Parse(Model({}), overrides);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_address, "0.0.0.0:7000");
  EXPECT_EQ(config->server.worker_threads, 2);
  EXPECT_TRUE(config->server.access_log);
}

// Random --set keys and values either apply or fail with a message naming
// the argument; none may crash.
TEST_F(ServingConfigTest, ArbitraryOverridesNeverCrash) {
  const char* keys[] = {"server", "server.tls", "server.tls.cert", "models",
                        "models.fmnist_cnn", "models.fmnist_cnn.variants",
                        "models.fmnist_cnn.variants.mixed.layers",
                        "models.fmnist_cnn.variants.mixed.layers.0.match.op",
                        "models.other.model-2.batching", ".", "a.b.c",
                        "models.fmnist_cnn.evaluation.inputs.x",
                        "models.other", "models.other.model-2.name"};
  const char* values[] = {"", "1", "[1, 2]", "{a: b}", "'", "null", "x: y",
                          "\"\\x00\"", "true"};
  for (const char* key : keys) {
    for (const char* value : values) {
      const std::string arg = absl::StrCat(key, "=", value);
      absl::StatusOr<ServerConfig> config =
          Parse(TwoModels(), Set({arg.c_str()}));
      if (!config.ok()) {
        EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_THAT(std::string(config.status().message()),
                    StartsWith(absl::StrCat("--set ", arg, ": ")));
      }
    }
  }
}

// The shipped config's serving settings, with its model mocked up.
TEST_F(ServingConfigTest, ShippedConfigServingSettings) {
  std::ifstream in(std::string(QS_SOURCE_DIR) + "/config/quantserve.yaml");
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty());
  WriteFile(dir_ / "models" / "fmnist_cnn.onnx", "x");
  absl::StatusOr<ServerConfig> config = ParseServerConfig(
      text.str(), "config/quantserve.yaml", (dir_ / "config").string());
  ASSERT_TRUE(config.ok()) << config.status();
  const ServerSection& s = config->server;
  EXPECT_EQ(s.shutdown_grace_ms, 30000);
  EXPECT_FALSE(s.access_log);
  EXPECT_FALSE(s.tls.has_value());
  EXPECT_EQ(s.max_tensor_elements, int64_t{1} << 26);
  EXPECT_EQ(s.max_batch_rows, 4096);
  EXPECT_EQ(s.nan_policy, NanPolicy::kReject);
  const BatchingConfig& b = config->models[0].batching;
  EXPECT_EQ(b.max_batch_size, 32);
  EXPECT_EQ(b.max_queue_delay_us, 500);
  EXPECT_EQ(b.max_queue_rows, 1024);
  EXPECT_EQ(b.workers, 1);
  // The commented-out tls example, once uncommented, is well-formed.
  WriteFile(dir_ / "config" / "tls" / "server.crt", "c");
  WriteFile(dir_ / "config" / "tls" / "server.key", "k");
  config = ParseServerConfig(
      text.str(), "config/quantserve.yaml", (dir_ / "config").string(),
      Set({"server.tls.cert=tls/server.crt", "server.tls.key=tls/server.key"}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.tls->cert_file,
            (dir_ / "config" / "tls" / "server.crt").string());
}

}  // namespace
}  // namespace qs
