// Reaching the soaked server before the load: the target (a child
// `quantserve serve`, or an address), readiness, the model's description,
// the reference answers and the priming of every batch size.
#pragma once

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "tools/soak/metrics_scrape.h"
#include "tools/soak/server_process.h"
#include "tools/soak/soak_options.h"
#include "tools/soak/soak_report.h"
#include "tools/soak/workload.h"

namespace qs::soak {

// A channel with a TCP connection of its own, 64 MiB messages.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address);

// The server being soaked: a child process, or an address.
class Target {
 public:
  Target(const Options& o, Report& report) : options_(o), report_(report) {}

  // Starts the child (--serve) and finds its ports; false (with a failure
  // recorded) when it cannot.
  bool Start() {
    using std::chrono::milliseconds;
    if (options_.serve_binary.empty()) {
      address_ = options_.address;
      if (!options_.metrics_address.empty()) {
        const size_t colon = options_.metrics_address.rfind(':');
        metrics_host_ = options_.metrics_address.substr(0, colon);
        metrics_port_ = std::stoi(options_.metrics_address.substr(colon + 1));
      }
      report_.target = address_;
      return true;
    }
    const std::string log = options_.server_log.empty()
                                ? "/tmp/quantserve-soak-" + std::to_string(getpid()) + ".log"
                                : options_.server_log;
    report_.server_log = log;
    report_.target = "serve " + options_.serve_binary + " --config " + options_.config;
    server_ = std::make_unique<ServerProcess>(options_.serve_binary, options_.config,
                                              options_.set, log);
    if (!server_->started()) return Fail("cannot start " + options_.serve_binary);
    if (!server_->WaitForPorts(milliseconds(static_cast<int64_t>(options_.startup_timeout_s * 1000)))) {
      return Fail("the server never logged its ports; log tail:\n" + server_->LogTail(20));
    }
    address_ = "127.0.0.1:" + std::to_string(server_->grpc_port());
    metrics_host_ = "127.0.0.1";
    metrics_port_ = server_->metrics_port();
    return true;
  }

  bool Fail(const std::string& why) {
    report_.failures.push_back(why);
    return false;
  }

  const std::string& address() const { return address_; }
  ServerProcess* process() { return server_.get(); }

  // Is the server still there? Records how it died when it is not.
  bool Alive(const std::shared_ptr<grpc::Channel>& channel) {
    if (server_) {
      if (!server_->Exited()) return true;
      report_.server_death = "the server process died: " +
                             DescribeWaitStatus(*server_->exit_status()) + "; log tail:\n" +
                             server_->LogTail(30);
      return false;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(2000));
      inference::ServerLiveResponse resp;
      if (inference::GRPCInferenceService::NewStub(channel)
              ->ServerLive(&ctx, inference::ServerLiveRequest(), &resp)
              .ok()) {
        return true;
      }
    }
    report_.server_death = "the server stopped answering ServerLive";
    return false;
  }

  ProcSample Sample() {
    if (server_) return SampleProcess(server_->pid());
    ProcSample s;
    if (auto m = Scrape()) {
      auto rss = SumBy(*m, "process_resident_memory_bytes", "");
      if (!rss.empty()) s.rss_bytes = static_cast<int64_t>(rss[""]);
      auto fds = SumBy(*m, "process_open_fds", "");
      if (!fds.empty()) s.fds = static_cast<int64_t>(fds[""]);
    }
    return s;
  }

  std::optional<std::vector<MetricSample>> Scrape() {
    if (metrics_port_ <= 0) return std::nullopt;
    auto body = FetchMetrics(metrics_host_, metrics_port_, std::chrono::milliseconds(5000));
    if (!body) return std::nullopt;
    return ParseMetrics(*body);
  }

 private:
  const Options& options_;
  Report& report_;
  std::unique_ptr<ServerProcess> server_;
  std::string address_;
  std::string metrics_host_;
  int metrics_port_ = -1;
};

// Polls KServe ServerReady until true; false after `timeout_s` or when the
// target dies.
bool WaitReady(Target& target, const std::shared_ptr<grpc::Channel>& channel, double timeout_s);

// The soaked model's input, output and variants, as the server describes
// them; nullopt (and `error`) when it does not suit the soak.
std::optional<ModelInfo> Describe(const Options& o, const std::shared_ptr<grpc::Channel>& channel,
                                  std::string* error);

// Each variant's logits for every pool image, asked 16 images at a time
// before any load.
bool TakeReferences(Workload& w, const std::shared_ptr<grpc::Channel>& channel,
                    std::string* error);

// One request of every size 0..rows, alone, per variant: each becomes a
// batch of exactly that size, so every plan the soak can need is built (and
// cached) before the RSS baseline instead of trickling in as rare batch
// sizes first occur.
bool Prime(const Workload& w, const std::shared_ptr<grpc::Channel>& channel, int rows,
           std::string* error);

}  // namespace qs::soak
