// `quantserve serve` as a child process of the soak: started on free
// loopback ports, its output in a log file, sampled through /proc/<pid>,
// stopped with SIGTERM. The child gets SIGKILL if the soak itself dies
// (PR_SET_PDEATHSIG) or is destroyed with the child still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qs::soak {

// One sample of a process from /proc (-1 = could not be read).
struct ProcSample {
  int64_t rss_bytes = -1;
  int64_t threads = -1;
  int64_t fds = -1;
};
ProcSample SampleProcess(pid_t pid);

class ServerProcess {
 public:
  // Starts `binary serve --config config` with gRPC and metrics on
  // 127.0.0.1 port 0, then `extra_set` as further --set overrides.
  ServerProcess(const std::string& binary, const std::string& config,
                const std::vector<std::string>& extra_set, const std::string& log_path);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;
  // The last `lines` lines of the log.
  std::string LogTail(int lines) const;

  // Waits for the "gRPC listening on" and "Prometheus metrics on" lines;
  // false if the process exits or `timeout` passes first.
  bool WaitForPorts(std::chrono::milliseconds timeout);
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }

  // Whether the process has exited (reaps it).
  bool Exited();
  // The wait status, or nullopt if still running after `timeout`.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  std::optional<int> exit_status() const { return status_; }
  void Signal(int sig);

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
  int grpc_port_ = -1;
  int metrics_port_ = -1;
};

// "exit code 0", "killed by signal 11 (Segmentation fault)", ...
std::string DescribeWaitStatus(int status);

}  // namespace qs::soak
