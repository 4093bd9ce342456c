// Reloads the server's config in the background: when Trigger() is called
// (SIGHUP) or, with a poll interval, when the config file or a model or
// dataset file it names changes. Each reload reads the config anew through
// `loader` and hands it to QuantServer::Reload, which swaps the models in
// atomically or keeps the old ones. A failed reload is logged with its
// reason; a file change that failed is not retried until the files change
// again (or a SIGHUP asks for it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "config/server_config.h"

namespace qs {

class QuantServer;

class ConfigReloader {
 public:
  using Loader = std::function<absl::StatusOr<ServerConfig>()>;

  // `initial` is the config the server started with (its files' state is
  // the baseline); poll 0 = reload only on Trigger().
  ConfigReloader(QuantServer& server, Loader loader, std::string config_path,
                 const ServerConfig& initial, std::chrono::milliseconds poll);
  ~ConfigReloader();
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Asks for a reload now (async-signal context not allowed: call it from a
  // normal thread, e.g. the one that sigwait()s).
  void Trigger();
  // Reloads finished so far (successful or not); for tests.
  int completed() const;

 private:
  void Loop();
  std::string Fingerprint(const ServerConfig& config) const;
  void ReloadOnce();

  QuantServer& server_;
  const Loader loader_;
  const std::string config_path_;
  const std::chrono::milliseconds poll_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool triggered_ = false;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  int completed_ = 0;       // guarded by mu_
  // Files (config + the models' files) of the last config read, and their
  // state then. Only the loop thread touches these.
  ServerConfig watched_;
  std::string last_fingerprint_;
  std::thread thread_;
};

}  // namespace qs
