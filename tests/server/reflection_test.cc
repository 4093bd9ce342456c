// Server reflection as a client without the server's .proto files sees it
// (grpcurl, Postman, evans): the real `quantserve serve` binary lists its
// services and hands out the descriptors of quantserve.v1 and KServe v2.
//
// This binary links only gRPC::grpc++, protobuf, gtest and its own
// grpc.reflection.v1alpha stubs (reflection.proto). It must not link the
// `server` library or gRPC::grpc++_reflection: their generated copies of the
// same message types would make protobuf abort at start-up.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string_view>
#include <thread>

#include "reflection.grpc.pb.h"

extern char** environ;

namespace qs {
namespace {

namespace fs = std::filesystem;
namespace refl = grpc::reflection::v1alpha;
using google::protobuf::FileDescriptorProto;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Contains;
using Clock = std::chrono::steady_clock;

const std::string kModels = QS_SOURCE_DIR "/models";

// A temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = testing::TempDir() + "quantserve_reflection_XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The bundled model, fp32 only, no evaluation, on 127.0.0.1.
std::string WriteServeConfig(const std::string& dir) {
  const std::string path = dir + "/quantserve.yaml";
  std::ofstream(path) << "server:\n"
                         "  grpc_address: 127.0.0.1:8500\n"
                         "  metrics_address: 127.0.0.1:0\n"
                         "  shutdown_grace_ms: 20000\n"
                         "models:\n"
                         "  - name: fmnist_cnn\n"
                         "    path: " << kModels << "/fmnist_cnn.onnx\n"
                         "    default_variant: fp32\n"
                         "    variants:\n"
                         "      - name: fp32\n";
  return path;
}

// `quantserve serve --config CONFIG --grpc-port 0`, stdout and stderr into a
// log file. Killed (SIGKILL) if still running when destroyed.
class ServeProcess {
 public:
  ServeProcess(const std::string& config, const std::string& log) : log_(log) {
    std::vector<std::string> args = {QUANTSERVE_BIN, "serve", "--config", config,
                                     "--grpc-port", "0"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The environment without QUANTSERVE_* overrides.
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).rfind("QUANTSERVE_", 0) != 0) envp.push_back(*e);
    }
    envp.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, term;
    sigemptyset(&none);
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &term);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    spawn_error_ = posix_spawn(&pid_, argv[0], &files, &attr, argv.data(), envp.data());
    if (spawn_error_ != 0) pid_ = -1;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&files);
  }
  ~ServeProcess() {
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  int spawn_error() const { return spawn_error_; }

  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // The first match of `pattern` in the log (whole match and groups); empty
  // if the process exits or `timeout` passes first.
  std::vector<std::string> WaitForLog(const std::regex& pattern, milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      std::smatch m;
      const std::string log = Log();
      if (std::regex_search(log, m, pattern)) return {m.begin(), m.end()};
      if (Exited()) return {};
      std::this_thread::sleep_for(milliseconds(10));
    }
    return {};
  }

  // Whether the process has exited (reaps it).
  bool Exited() {
    if (status_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
    return status_.has_value();
  }

  // The wait status, or nullopt if still running after `timeout`.
  std::optional<int> WaitExit(milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (!Exited() && Clock::now() < until) std::this_thread::sleep_for(milliseconds(10));
    return status_;
  }

  void Signal(int sig) { kill(pid_, sig); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int spawn_error_ = 0;
  std::optional<int> status_;
};

class ReflectionTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    serve_.emplace(WriteServeConfig(dir_.path()), dir_.path() + "/serve.log");
    ASSERT_TRUE(serve_->started()) << "cannot run " QUANTSERVE_BIN ": " << serve_->spawn_error();
    auto listening = serve_->WaitForLog(std::regex(R"(gRPC listening on \S*:(\d+))"), seconds(15));
    ASSERT_EQ(listening.size(), 2u) << "no 'gRPC listening on' line; log:\n" << serve_->Log();
    port_ = std::stoi(listening[1]);
    // Reflection answers from the start; wait for the models anyway, so
    // SIGTERM later meets a fully started server.
    ASSERT_FALSE(serve_->WaitForLog(std::regex("serving on"), seconds(15)).empty())
        << serve_->Log();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                         grpc::InsecureChannelCredentials(), args);
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() + seconds(10));
    stream_ = refl::ServerReflection::NewStub(channel_)->ServerReflectionInfo(ctx_.get());
  }

  void TearDown() override {
    if (stream_) {
      stream_->WritesDone();
      grpc::Status s = stream_->Finish();
      EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    }
    // Close the connection first: an idle one would hold the server's
    // shutdown for its whole grace period (see shutdown_test).
    stream_.reset();
    ctx_.reset();  // it holds the channel too
    channel_.reset();
    if (serve_ && serve_->started()) {
      serve_->Signal(SIGTERM);
      std::optional<int> status = serve_->WaitExit(seconds(5));
      ASSERT_TRUE(status.has_value()) << "still running 5 s after SIGTERM; log:\n" << serve_->Log();
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
          << "wait status " << *status << "; log:\n" << serve_->Log();
    }
  }

  // One request and its response on the shared stream.
  refl::ServerReflectionResponse Ask(const refl::ServerReflectionRequest& req) {
    refl::ServerReflectionResponse resp;
    EXPECT_TRUE(stream_->Write(req));
    EXPECT_TRUE(stream_->Read(&resp));
    return resp;
  }

  std::vector<std::string> ListServices() {
    refl::ServerReflectionRequest req;
    req.set_list_services("*");
    refl::ServerReflectionResponse resp = Ask(req);
    EXPECT_TRUE(resp.has_list_services_response()) << resp.ShortDebugString();
    std::vector<std::string> names;
    for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
    return names;
  }

  // The descriptors of the file that defines `symbol`, and of its imports.
  std::vector<FileDescriptorProto> FilesContaining(const std::string& symbol) {
    refl::ServerReflectionRequest req;
    req.set_file_containing_symbol(symbol);
    refl::ServerReflectionResponse resp = Ask(req);
    EXPECT_TRUE(resp.has_file_descriptor_response()) << symbol << ": " << resp.ShortDebugString();
    std::vector<FileDescriptorProto> files;
    for (const std::string& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
      FileDescriptorProto file;
      EXPECT_TRUE(file.ParseFromString(bytes)) << symbol;
      files.push_back(file);
    }
    return files;
  }

  static std::vector<std::string> FileNames(const std::vector<FileDescriptorProto>& files) {
    std::vector<std::string> names;
    for (const auto& f : files) names.push_back(f.name());
    return names;
  }

  // `files` in a fresh pool (dependencies first, as a client would do it),
  // then the service `name` from it; nullptr if the pool rejects them.
  const google::protobuf::ServiceDescriptor* BuildService(
      const std::vector<FileDescriptorProto>& files, const std::string& name) {
    pool_ = std::make_unique<google::protobuf::DescriptorPool>();
    std::vector<const FileDescriptorProto*> pending;
    for (const auto& f : files) pending.push_back(&f);
    // Retry until every file's imports are in: the server may send them in any order.
    for (bool progress = true; progress && !pending.empty();) {
      progress = false;
      for (auto it = pending.begin(); it != pending.end();) {
        bool ready = true;
        for (const auto& dep : (*it)->dependency()) ready &= pool_->FindFileByName(dep) != nullptr;
        if (ready && pool_->BuildFile(**it) != nullptr) {
          it = pending.erase(it);
          progress = true;
        } else {
          ++it;
        }
      }
    }
    EXPECT_TRUE(pending.empty()) << pending.size() << " descriptors could not be built";
    return pool_->FindServiceByName(name);
  }

  TempDir dir_;
  std::optional<ServeProcess> serve_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<refl::ServerReflectionRequest,
                                           refl::ServerReflectionResponse>>
      stream_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
};

TEST_F(ReflectionTest, ListsEveryService) {
  std::vector<std::string> services = ListServices();
  EXPECT_THAT(services, Contains("quantserve.v1.InferenceService"));
  EXPECT_THAT(services, Contains("inference.GRPCInferenceService"));
  EXPECT_THAT(services, Contains("grpc.health.v1.Health"));
  EXPECT_THAT(services, Contains("grpc.reflection.v1alpha.ServerReflection"));
}

TEST_F(ReflectionTest, DescribesInferenceService) {
  std::vector<FileDescriptorProto> files = FilesContaining("quantserve.v1.InferenceService");
  const FileDescriptorProto* inference = nullptr;
  for (const auto& f : files) {
    if (f.name() == "quantserve/v1/inference.proto") inference = &f;
  }
  ASSERT_NE(inference, nullptr) << "quantserve/v1/inference.proto not among " << files.size()
                                << " files";
  EXPECT_EQ(inference->package(), "quantserve.v1");
  const google::protobuf::ServiceDescriptorProto* service = nullptr;
  for (const auto& s : inference->service()) {
    if (s.name() == "InferenceService") service = &s;
  }
  ASSERT_NE(service, nullptr) << inference->ShortDebugString();
  const google::protobuf::MethodDescriptorProto* predict = nullptr;
  for (const auto& m : service->method()) {
    if (m.name() == "Predict") predict = &m;
  }
  ASSERT_NE(predict, nullptr) << service->ShortDebugString();
  EXPECT_EQ(predict->input_type(), ".quantserve.v1.PredictRequest");
  EXPECT_EQ(predict->output_type(), ".quantserve.v1.PredictResponse");
  EXPECT_FALSE(predict->client_streaming());
  EXPECT_FALSE(predict->server_streaming());

  // Enough for a client to build requests: the descriptors form a pool, and
  // the request type is fully described (e.g. Tensor's raw_data field).
  const auto* built = BuildService(files, "quantserve.v1.InferenceService");
  ASSERT_NE(built, nullptr);
  ASSERT_NE(built->FindMethodByName("GetModelMetadata"), nullptr);
  ASSERT_NE(built->FindMethodByName("ListModels"), nullptr);
  const auto* tensor = pool_->FindMessageTypeByName("quantserve.v1.Tensor");
  ASSERT_NE(tensor, nullptr);
  ASSERT_NE(tensor->FindFieldByName("raw_data"), nullptr);
  EXPECT_EQ(tensor->FindFieldByName("raw_data")->number(), 8);
}

TEST_F(ReflectionTest, DescribesKServeServiceAndMethods) {
  const auto* kserve =
      BuildService(FilesContaining("inference.GRPCInferenceService"), "inference.GRPCInferenceService");
  ASSERT_NE(kserve, nullptr);
  EXPECT_NE(kserve->FindMethodByName("ModelInfer"), nullptr);
  EXPECT_NE(kserve->FindMethodByName("ServerLive"), nullptr);
  // A method or a message name finds the file that defines it. (gRPC 1.51's
  // reflection service repeats the files of earlier answers on the same
  // stream, first - grpc/grpc#18009 - so look the file up by name, as robust
  // clients do.)
  EXPECT_THAT(FileNames(FilesContaining("quantserve.v1.InferenceService.Predict")),
              Contains("quantserve/v1/inference.proto"));
  EXPECT_THAT(FileNames(FilesContaining("quantserve.v1.PredictResponse")),
              Contains("quantserve/v1/inference.proto"));
  EXPECT_THAT(FileNames(FilesContaining("inference.ModelInferRequest")),
              Contains("inference/grpc_predict_v2.proto"));
}

TEST_F(ReflectionTest, UnknownSymbolIsNotFoundOnTheSameStream) {
  refl::ServerReflectionRequest req;
  req.set_file_containing_symbol("quantserve.v1.NoSuchService");
  refl::ServerReflectionResponse resp = Ask(req);
  ASSERT_TRUE(resp.has_error_response()) << resp.ShortDebugString();
  EXPECT_EQ(resp.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  // The stream stays usable after an error.
  EXPECT_THAT(ListServices(), Contains("quantserve.v1.InferenceService"));
  // Files by name, as named in the descriptors.
  req.set_file_by_filename("quantserve/v1/inference.proto");
  resp = Ask(req);
  ASSERT_TRUE(resp.has_file_descriptor_response()) << resp.ShortDebugString();
  ASSERT_GE(resp.file_descriptor_response().file_descriptor_proto_size(), 1);
  FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(resp.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "quantserve/v1/inference.proto");
  EXPECT_EQ(file.package(), "quantserve.v1");
  // An unknown file name is NOT_FOUND as well.
  req.set_file_by_filename("quantserve/v1/nope.proto");
  resp = Ask(req);
  ASSERT_TRUE(resp.has_error_response()) << resp.ShortDebugString();
  EXPECT_EQ(resp.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
}

}  // namespace
}  // namespace qs
