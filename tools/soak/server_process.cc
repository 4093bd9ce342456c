#include "tools/soak/server_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace qs::soak {

using Clock = std::chrono::steady_clock;

ProcSample SampleProcess(pid_t pid) {
  ProcSample s;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream status(dir + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_bytes = std::stoll(line.substr(6)) * 1024;  // kB
    if (line.rfind("Threads:", 0) == 0) s.threads = std::stoll(line.substr(8));
  }
  if (DIR* d = opendir((dir + "/fd").c_str())) {
    s.fds = 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++s.fds;
    }
    closedir(d);
  }
  return s;
}

ServerProcess::ServerProcess(const std::string& binary, const std::string& config,
                             const std::vector<std::string>& extra_set,
                             const std::string& log_path)
    : log_path_(log_path) {
  std::vector<std::string> args = {binary, "serve", "--config", config,
                                   "--set", "server.grpc_address=127.0.0.1:0",
                                   "--set", "server.metrics_address=127.0.0.1:0"};
  for (const std::string& s : extra_set) {
    args.push_back("--set");
    args.push_back(s);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the soak died already
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execve(argv[0], argv.data(), environ);
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;  // -1 when fork failed
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && !Exited()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string ServerProcess::LogTail(int lines) const {
  const std::string log = Log();
  size_t pos = log.size();
  for (int i = 0; i <= lines && pos > 0; ++i) {
    pos = log.rfind('\n', pos - 1);
    if (pos == std::string::npos) return log;
  }
  return log.substr(pos + 1);
}

bool ServerProcess::WaitForPorts(std::chrono::milliseconds timeout) {
  static const std::regex kGrpc(R"(gRPC listening on \S*:(\d+))");
  static const std::regex kMetrics(R"(Prometheus metrics on http://\S*:(\d+)/metrics)");
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    const std::string log = Log();
    std::smatch g, m;
    if (std::regex_search(log, g, kGrpc) && std::regex_search(log, m, kMetrics)) {
      grpc_port_ = std::stoi(g[1]);
      metrics_port_ = std::stoi(m[1]);
      return true;
    }
    if (Exited()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool ServerProcess::Exited() {
  if (status_) return true;
  if (pid_ <= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
  return status_.has_value();
}

std::optional<int> ServerProcess::WaitExit(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (!Exited() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return status_;
}

void ServerProcess::Signal(int sig) {
  if (pid_ > 0 && !status_) kill(pid_, sig);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "wait status " + std::to_string(status);
}

}  // namespace qs::soak
