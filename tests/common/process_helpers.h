// Helpers for end-to-end tests of the command-line tools: run a built
// binary through the shell and capture its stdout, and start an in-process
// QuantServer (real gRPC on a free port) from YAML text.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "config/server_config.h"
#include "server/quant_server.h"

namespace qs::testing_util {

struct CommandRun {
  int exit_code = -1;  // -1: not run, or killed by a signal
  std::string out;     // stdout
};

// `command` goes to /bin/sh; redirect stderr in it where needed.
inline CommandRun RunCommand(const std::string& command) {
  CommandRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) run.out.append(buf, n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// A started server with every model loaded, or nullptr after recording the
// failure. `base_dir` resolves relative paths in the YAML.
inline std::unique_ptr<QuantServer> StartServerForTest(const std::string& yaml,
                                                      const std::string& file_name,
                                                      const std::string& base_dir) {
  auto config = ParseServerConfig(yaml, file_name, base_dir);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return nullptr;
  auto server = QuantServer::Start(*config);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  const absl::Status loaded = (*server)->LoadModels();
  EXPECT_TRUE(loaded.ok()) << loaded;
  if (!loaded.ok()) return nullptr;
  return std::move(*server);
}

}  // namespace qs::testing_util
