// The `quantserve` subcommands. Flags and JSON keys are user-facing
// contracts: keep them stable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qs::cli {

struct ServeArgs {
  std::string config;
  int grpc_port = -1;     // -1: keep the config's address
  int metrics_port = -1;  // -1: keep the config's address
  std::vector<std::string> set;  // --set key.path=value
};
int Serve(const ServeArgs& args);

struct ReportArgs {
  std::string config;
  bool json = false;
  std::vector<std::string> set;
};
int Report(const ReportArgs& args);

struct RunArgs {
  std::string model;
  std::vector<std::string> inputs;  // NAME=FILE(.npy|.pb)
  std::string output_dir;
};
int Run(const RunArgs& args);

struct ExportArgs {
  std::string config;
  std::string model;    // a model name in the config
  std::string variant;  // one of that model's variants
  std::string out;      // the .onnx file to write
  std::vector<std::string> set;
};
int Export(const ExportArgs& args);

struct ProbeArgs {
  std::string address = "127.0.0.1:8500";
  int timeout_ms = 2000;
};
// Exit 0 if the server at `address` is ready (KServe v2 ServerReady).
int Probe(const ProbeArgs& args);

struct BenchArgs {
  std::string model;             // .onnx file
  std::string config;            // with `variant`: that variant's policy ...
  std::string variant;
  std::string preset;            // ... or "fp32" / "w8a8"
  std::string calibration_data;  // .npy of float inputs, or "random"
  int64_t calibration_samples = 256;
  std::string input_data;        // .npy of inputs to run on; empty: random inputs
  int64_t batch = 1;
  int threads = 1;
  double seconds = 10;
  bool json = false;
  bool profile = false;  // time every layer of the measured runs
};
// In-process throughput and latency of one variant (random or --input-data inputs).
int Bench(const BenchArgs& args);

}  // namespace qs::cli
