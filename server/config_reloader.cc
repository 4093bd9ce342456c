#include "server/config_reloader.h"

#include <spdlog/spdlog.h>

#include "server/file_fingerprint.h"
#include "server/quant_server.h"

namespace qs {

ConfigReloader::ConfigReloader(QuantServer& server, Loader loader, std::string config_path,
                               const ServerConfig& initial, std::chrono::milliseconds poll)
    : server_(server),
      loader_(std::move(loader)),
      config_path_(std::move(config_path)),
      poll_(poll),
      watched_(initial) {
  last_fingerprint_ = Fingerprint(watched_);
  thread_ = std::thread([this] { Loop(); });
}

ConfigReloader::~ConfigReloader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ConfigReloader::Trigger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    triggered_ = true;
  }
  wake_.notify_all();
}

int ConfigReloader::completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_;
}

std::string ConfigReloader::Fingerprint(const ServerConfig& config) const {
  std::vector<std::string> files = {config_path_};
  for (const ModelConfig& mc : config.models) {
    for (std::string& f : ModelFiles(mc)) files.push_back(std::move(f));
  }
  return FingerprintFiles(files);
}

void ConfigReloader::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto woken = [this] { return stopping_ || triggered_; };
    if (poll_.count() > 0) {
      wake_.wait_for(lock, poll_, woken);
    } else {
      wake_.wait(lock, woken);
    }
    if (stopping_) return;
    const bool triggered = triggered_;
    triggered_ = false;
    lock.unlock();
    if (triggered || Fingerprint(watched_) != last_fingerprint_) ReloadOnce();
    lock.lock();
  }
}

void ConfigReloader::ReloadOnce() {
  // The state before reading: a change made while the reload runs is seen
  // by the next poll.
  const std::string before = Fingerprint(watched_);
  absl::StatusOr<ServerConfig> config = loader_();
  absl::Status status = config.ok() ? server_.Reload(*config) : config.status();
  if (!config.ok()) server_.RecordFailedReload();
  if (status.ok()) {
    watched_ = *config;
    last_fingerprint_ = Fingerprint(watched_);
    spdlog::info("config reload from {} done", config_path_);
  } else {
    last_fingerprint_ = before;  // not retried until something changes again
    spdlog::error("config reload from {} failed, the previous models keep serving: {}",
                  config_path_, std::string(status.message()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++completed_;
}

}  // namespace qs
