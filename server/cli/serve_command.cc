// quantserve serve --config FILE [--grpc-port N] [--metrics-port N]
#include <csignal>
#include <cstdio>
#include <thread>

#include <spdlog/spdlog.h>

#include "config/server_config.h"
#include "server/cli/commands.h"
#include "server/cli/report_table.h"
#include "server/quant_server.h"

namespace qs::cli {
namespace {

// Replaces the port of "host:port" (IPv6 "[::]:port" too).
std::string WithPort(const std::string& address, int port) {
  const auto colon = address.rfind(':');
  const std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  return host + ":" + std::to_string(port);
}

}  // namespace

int Serve(const ServeArgs& args) {
  // Block the shutdown signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = LoadServerConfig(args.config, OverridesFromProcess(args.set));
  if (!config.ok()) {
    spdlog::error("{}", std::string(config.status().message()));
    return 1;
  }
  if (args.grpc_port >= 0) {
    config->server.grpc_address = WithPort(config->server.grpc_address, args.grpc_port);
  }
  if (args.metrics_port >= 0) {
    config->server.metrics_address = WithPort(config->server.metrics_address, args.metrics_port);
  }
  auto server = QuantServer::Start(*config);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  const std::string address = WithPort(config->server.grpc_address, (*server)->grpc_port());
  spdlog::info("gRPC listening on {} (health: NOT_SERVING while models load)", address);
  if ((*server)->metrics_port() > 0) {
    spdlog::info("Prometheus metrics on http://{}/metrics",
                 WithPort(config->server.metrics_address, (*server)->metrics_port()));
  }

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received signal {}: shutting down, finishing calls in flight", sig);
    (*server)->Shutdown(std::chrono::milliseconds(config->server.shutdown_grace_ms));
  });

  absl::Status loaded = (*server)->LoadModels();
  if (!loaded.ok()) {
    spdlog::error("{}", std::string(loaded.message()));
    kill(getpid(), SIGTERM);
    waiter.join();
    return 1;
  }
  std::vector<BuiltModel> built;
  for (const auto& model : (*server)->registry().List()) built.push_back(model->built);
  PrintReportTable(stdout, built);
  std::fflush(stdout);
  spdlog::info("serving on {} (health: SERVING)", address);
  (*server)->Wait();
  waiter.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace qs::cli
