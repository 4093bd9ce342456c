// quantserve serve --config FILE [--grpc-port N] [--metrics-port N]
#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include <spdlog/spdlog.h>

#include "config/server_config.h"
#include "server/cli/commands.h"
#include "server/cli/report_table.h"
#include "server/config_reloader.h"
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
  // Block the shutdown and reload signals in every thread; one thread waits
  // for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The config file with --set/environment overrides and the port flags; the
  // same on every reload.
  const ConfigOverrides overrides = OverridesFromProcess(args.set);
  auto load = [&args, overrides]() -> absl::StatusOr<ServerConfig> {
    auto config = LoadServerConfig(args.config, overrides);
    if (!config.ok()) return config;
    if (args.grpc_port >= 0) {
      config->server.grpc_address = WithPort(config->server.grpc_address, args.grpc_port);
    }
    if (args.metrics_port >= 0) {
      config->server.metrics_address =
          WithPort(config->server.metrics_address, args.metrics_port);
    }
    return config;
  };
  auto config = load();
  if (!config.ok()) {
    spdlog::error("{}", std::string(config.status().message()));
    return 1;
  }
  auto server = QuantServer::Start(*config);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  const std::string address = WithPort(config->server.grpc_address, (*server)->grpc_port());
  spdlog::info("gRPC listening on {} (health: NOT_SERVING while models load; at most {} calls "
               "at once)",
               address, (*server)->max_concurrent_calls());
  if ((*server)->metrics_port() > 0) {
    spdlog::info("Prometheus metrics on http://{}/metrics",
                 WithPort(config->server.metrics_address, (*server)->metrics_port()));
  }

  // Created once the models are loaded; SIGHUP before that is ignored.
  std::atomic<ConfigReloader*> reloader{nullptr};
  std::thread waiter([&] {
    while (true) {
      int sig = 0;
      sigwait(&signals, &sig);
      if (sig == SIGHUP) {
        if (ConfigReloader* r = reloader.load()) {
          spdlog::info("received SIGHUP: reloading {}", args.config);
          r->Trigger();
        } else {
          spdlog::warn("received SIGHUP while the models are still loading: ignored");
        }
        continue;
      }
      spdlog::info("received signal {}: shutting down, finishing calls in flight", sig);
      (*server)->Shutdown(std::chrono::milliseconds(config->server.shutdown_grace_ms));
      return;
    }
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
  const std::chrono::milliseconds poll(config->server.watch_config_ms);
  ConfigReloader config_reloader(**server, load, args.config, *config, poll);
  reloader = &config_reloader;
  if (poll.count() > 0) {
    spdlog::info("watching {} and its model files every {} ms; SIGHUP reloads too", args.config,
                 poll.count());
  }
  (*server)->Wait();
  waiter.join();
  reloader = nullptr;
  spdlog::info("stopped");
  return 0;
}

}  // namespace qs::cli
