// Zero-downtime config reload: models are rebuilt in the background and
// swapped in atomically while traffic flows, with no failed request; a bad
// config or a bad model is rejected and the old models keep serving; only
// what changed is rebuilt. In-process (QuantServer::Reload and the polling
// ConfigReloader) and with the real binary on SIGHUP.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "engine/data/npy.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "server/config_reloader.h"
#include "server/quant_server.h"

namespace qs {
namespace {

namespace v1 = quantserve::v1;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::HasSubstr;

const std::string kModels = QS_SOURCE_DIR "/models";
const std::string kData = "/usr/share/datasets/fashion-mnist";

// Model `name` on `model_path`: fp32 and, if `w8a8`, a w8a8 variant.
std::string ModelYaml(const std::string& name, const std::string& model_path, bool w8a8,
                      const std::string& default_variant = "fp32") {
  std::string y = "  - name: " + name + "\n    path: " + model_path +
                  "\n    default_variant: " + default_variant + "\n";
  y += "    batching: {max_batch_size: 8, max_queue_delay_us: 500}\n";
  y += "    calibration: {inputs: " + kData + "/train-images-idx3-ubyte.gz, limit: 128}\n";
  y += "    variants:\n      - name: fp32\n";
  if (w8a8) y += "      - name: w8a8\n        weights: {bits: 8}\n        activations: {bits: 8}\n";
  return y;
}

std::string ServerYaml(const std::string& models, int watch_ms = 0) {
  return "server:\n  grpc_address: 127.0.0.1:0\n  metrics_address: 127.0.0.1:0\n"
         "  watch_config_ms: " + std::to_string(watch_ms) + "\nmodels:\n" + models;
}

void Write(const fs::path& path, const std::string& text) {
  // Write-then-rename, as editors and ConfigMap updates do: never a
  // half-written file.
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream(tmp) << text;
  fs::rename(tmp, path);
}

v1::PredictRequest Request(const std::string& model, const std::string& variant = "") {
  static const Tensor images = *ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
  v1::PredictRequest req;
  req.set_model(model);
  req.set_variant(variant);
  v1::Tensor* t = req.add_inputs();
  t->set_name("input");
  t->set_datatype(v1::FP32);
  for (int64_t d : {2, 1, 28, 28}) t->add_shape(d);
  t->mutable_float_data()->Add(images.data<float>(), images.data<float>() + 2 * 784);
  return req;
}

// Clients sending Predict to `model`'s default variant until stopped,
// counting failures (and keeping the first message).
class Traffic {
 public:
  Traffic(std::shared_ptr<grpc::Channel> channel, std::string model, int threads = 3) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, channel, model] {
        auto stub = v1::InferenceService::NewStub(channel);
        while (!stop_) {
          grpc::ClientContext ctx;
          v1::PredictResponse resp;
          grpc::Status s = stub->Predict(&ctx, Request(model), &resp);
          ++sent_;
          if (!s.ok()) {
            std::lock_guard<std::mutex> lock(mu_);
            if (failed_++ == 0) first_error_ = s.error_message();
          }
        }
      });
    }
  }
  ~Traffic() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int sent() const { return sent_; }
  int failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_{0};
  std::mutex mu_;
  int failed_ = 0;
  std::string first_error_;
  std::vector<std::thread> threads_;
};

class ReloadTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kData + "/train-images-idx3-ubyte.gz"));
    dir_ = fs::temp_directory_path() /
           ("reload_test_" + std::to_string(getpid()) + "_" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    model_ = (dir_ / "model.onnx").string();
    fs::copy_file(kModels + "/fmnist_cnn.onnx", model_);
    config_path_ = (dir_ / "quantserve.yaml").string();
  }
  void TearDown() override {
    if (server_) server_->Shutdown(milliseconds(100));
    server_.reset();
    fs::remove_all(dir_);
  }

  void StartWith(const std::string& yaml) {
    Write(config_path_, yaml);
    auto config = LoadServerConfig(config_path_);
    ASSERT_TRUE(config.ok()) << config.status();
    auto server = QuantServer::Start(*config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->LoadModels().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
  }
  absl::Status ReloadWith(const std::string& yaml) {
    Write(config_path_, yaml);
    auto config = LoadServerConfig(config_path_);
    if (!config.ok()) return config.status();
    return server_->Reload(*config);
  }
  grpc::Status Predict(const std::string& model, const std::string& variant = "") {
    grpc::ClientContext ctx;
    v1::PredictResponse resp;
    return v1::InferenceService::NewStub(channel_)->Predict(&ctx, Request(model, variant), &resp);
  }
  std::vector<std::string> Variants(const std::string& model) {
    auto m = server_->registry().Find(model);
    std::vector<std::string> names;
    if (m) {
      for (const auto& v : m->built.variants) names.push_back(v.report.name);
    }
    return names;
  }

  fs::path dir_;
  std::string model_, config_path_;
  std::unique_ptr<QuantServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ReloadTest, AddsAVariantUnderLoadWithoutAFailedRequest) {
  StartWith(ServerYaml(ModelYaml("m", model_, false)));
  Traffic traffic(channel_, "m");
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_TRUE(ReloadWith(ServerYaml(ModelYaml("m", model_, true, "w8a8"))).ok());
  std::this_thread::sleep_for(milliseconds(300));
  traffic.Stop();
  EXPECT_EQ(traffic.failed(), 0) << traffic.first_error();
  EXPECT_GT(traffic.sent(), 20);
  EXPECT_EQ(Variants("m"), (std::vector<std::string>{"fp32", "w8a8"}));
  EXPECT_EQ(server_->registry().Find("m")->default_variant, "w8a8");
  EXPECT_TRUE(Predict("m", "w8a8").ok());
}

TEST_F(ReloadTest, ABadConfigIsRejectedAndTheOldModelsKeepServing) {
  StartWith(ServerYaml(ModelYaml("m", model_, false)));
  auto before = server_->registry().Find("m");
  Traffic traffic(channel_, "m");
  absl::Status s = ReloadWith("server: {}\nmodels:\n  - name: m\n    pathh: x\n");
  traffic.Stop();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("quantserve.yaml:4:5: models[0].pathh"));
  EXPECT_EQ(server_->registry().Find("m"), before);
  EXPECT_EQ(traffic.failed(), 0) << traffic.first_error();
}

TEST_F(ReloadTest, ABrokenModelFileIsRejectedNamingTheModel) {
  StartWith(ServerYaml(ModelYaml("m", model_, false)));
  auto before = server_->registry().Find("m");
  const std::string broken = (dir_ / "broken.onnx").string();
  std::ofstream(broken) << "this is not an ONNX model";
  Traffic traffic(channel_, "m");
  absl::Status s =
      ReloadWith(ServerYaml(ModelYaml("m", model_, false) + ModelYaml("other", broken, false)));
  traffic.Stop();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("config reload rejected"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("other"));
  // All or nothing: "m" is untouched and "other" is not served.
  EXPECT_EQ(server_->registry().Find("m"), before);
  EXPECT_EQ(server_->registry().Find("other"), nullptr);
  EXPECT_EQ(traffic.failed(), 0) << traffic.first_error();
}

TEST_F(ReloadTest, OnlyChangedModelsAreRebuiltAndRemovedOnesGo) {
  StartWith(ServerYaml(ModelYaml("a", model_, false) + ModelYaml("b", model_, false)));
  auto a = server_->registry().Find("a");
  auto b = server_->registry().Find("b");
  // "a" moves down a few lines (its locations change, its settings don't);
  // "b" changes; "c" is new.
  ASSERT_TRUE(ReloadWith(ServerYaml(ModelYaml("b", model_, false, "fp32") +
                                    "    eval_batch_size: 32\n" + ModelYaml("a", model_, false) +
                                    ModelYaml("c", model_, false)))
                  .ok());
  EXPECT_EQ(server_->registry().Find("a"), a);
  EXPECT_NE(server_->registry().Find("b"), b);
  EXPECT_NE(server_->registry().Find("c"), nullptr);
  // The model file of "a" changes on disk: rebuilt although its config did not.
  std::this_thread::sleep_for(milliseconds(20));
  fs::copy_file(kModels + "/fmnist_cnn.onnx", model_, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(ReloadWith(ServerYaml(ModelYaml("a", model_, false))).ok());
  EXPECT_NE(server_->registry().Find("a"), a);
  EXPECT_EQ(server_->registry().Find("b"), nullptr);  // removed
  EXPECT_EQ(Predict("b").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Predict("a").ok());
}

TEST_F(ReloadTest, TheWatcherReloadsWhenTheFileChangesAndNotAgainAfterAFailure) {
  StartWith(ServerYaml(ModelYaml("m", model_, false), 50));
  ConfigReloader reloader(*server_, [this] { return LoadServerConfig(config_path_); },
                          config_path_, *LoadServerConfig(config_path_), milliseconds(50));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(reloader.completed(), 0);  // nothing changed, nothing done
  Write(config_path_, ServerYaml(ModelYaml("m", model_, true), 50));
  for (int i = 0; i < 600 && reloader.completed() < 1; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(reloader.completed(), 1);
  EXPECT_EQ(Variants("m"), (std::vector<std::string>{"fp32", "w8a8"}));
  Write(config_path_, "models: [");  // broken
  for (int i = 0; i < 100 && reloader.completed() < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(reloader.completed(), 2);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(reloader.completed(), 2);  // not retried while nothing changes
  EXPECT_EQ(Variants("m"), (std::vector<std::string>{"fp32", "w8a8"}));
  reloader.Trigger();  // an explicit request is tried (and fails) again
  for (int i = 0; i < 100 && reloader.completed() < 3; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(reloader.completed(), 3);
}

TEST_F(ReloadTest, ReloadsAreCountedInTheMetrics) {
  StartWith(ServerYaml(ModelYaml("m", model_, false)));
  ConfigReloader reloader(*server_, [this] { return LoadServerConfig(config_path_); },
                          config_path_, *LoadServerConfig(config_path_), milliseconds(0));
  auto reload = [&](const std::string& yaml, int n) {
    Write(config_path_, yaml);
    reloader.Trigger();
    for (int i = 0; i < 600 && reloader.completed() < n; ++i) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    ASSERT_EQ(reloader.completed(), n);
  };
  auto value = [&](const std::string& name, const std::string& result) {
    for (const auto& family : server_->metrics().registry()->Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        if (result.empty()) return m.gauge.value;
        if (!m.label.empty() && m.label[0].value == result) return m.counter.value;
      }
    }
    return -1.0;
  };
  EXPECT_EQ(value("quantserve_config_last_reload_successful", ""), 1);  // the start-up load
  reload(ServerYaml(ModelYaml("m", model_, true)), 1);
  EXPECT_EQ(value("quantserve_config_reloads_total", "success"), 1);
  reload("models: [", 2);
  EXPECT_EQ(value("quantserve_config_reloads_total", "failure"), 1);
  EXPECT_EQ(value("quantserve_config_last_reload_successful", ""), 0);
  EXPECT_GT(value("quantserve_config_last_reload_success_timestamp_seconds", ""), 1.7e9);
}

// The real binary: SIGHUP after editing the config adds a variant.
TEST_F(ReloadTest, SighupReloadsTheRunningBinary) {
  Write(config_path_, ServerYaml(ModelYaml("m", model_, false)));
  const std::string log = (dir_ / "serve.log").string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execl(QUANTSERVE_BIN, QUANTSERVE_BIN, "serve", "--config", config_path_.c_str(),
          "--grpc-port", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto read_log = [&] {
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  auto wait_for = [&](const std::string& text) {
    for (int i = 0; i < 1200; ++i) {
      if (read_log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  };
  ASSERT_TRUE(wait_for("(health: SERVING)")) << read_log();
  std::smatch port;
  const std::string text = read_log();
  ASSERT_TRUE(std::regex_search(text, port, std::regex(R"(gRPC listening on \S*:(\d+))")));
  channel_ = grpc::CreateChannel("127.0.0.1:" + port[1].str(), grpc::InsecureChannelCredentials());
  {
    Traffic traffic(channel_, "m");
    Write(config_path_, ServerYaml(ModelYaml("m", model_, true, "w8a8")));
    kill(pid, SIGHUP);
    EXPECT_TRUE(wait_for("config reload from")) << read_log();
    std::this_thread::sleep_for(milliseconds(200));
    traffic.Stop();
    EXPECT_EQ(traffic.failed(), 0) << traffic.first_error();
  }
  EXPECT_TRUE(Predict("m", "w8a8").ok()) << read_log();
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_log();
}

}  // namespace
}  // namespace qs
