// quantserve: serve, report and run quantized ONNX models.
#include <CLI/CLI.hpp>

#include "server/cli/commands.h"
#include "server/malloc_arenas.h"

int main(int argc, char** argv) {
  CLI::App app{"quantserve: loads float ONNX models, quantizes them by a YAML policy "
               "and serves them over gRPC on oneDNN"};
  app.require_subcommand(1);

  qs::cli::ServeArgs serve;
  CLI::App* serve_cmd = app.add_subcommand("serve", "Serve every configured model over gRPC");
  serve_cmd->add_option("--config", serve.config, "Server config YAML")
      ->required()
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--grpc-port", serve.grpc_port,
                        "Override the gRPC port (0 picks a free port)");
  serve_cmd->add_option("--set", serve.set,
                        "Override a config key: --set server.intra_op_threads=2 (repeatable)");
  serve_cmd->add_option("--metrics-port", serve.metrics_port,
                        "Override the Prometheus metrics port (0 picks a free port)");

  qs::cli::ReportArgs report;
  CLI::App* report_cmd = app.add_subcommand(
      "report", "Build and evaluate every configured model variant and print a table");
  report_cmd->add_option("--config", report.config, "Server config YAML")
      ->required()
      ->check(CLI::ExistingFile);
  report_cmd->add_option("--set", report.set, "Override a config key (repeatable)");
  report_cmd->add_flag("--json", report.json, "Print one JSON object instead of a table");

  qs::cli::RunArgs run;
  CLI::App* run_cmd = app.add_subcommand("run", "Run a model once on inputs from files");
  run_cmd->add_option("--model", run.model, "ONNX model file")->required()->check(CLI::ExistingFile);
  run_cmd->add_option("--input", run.inputs, "NAME=FILE with FILE a .npy or TensorProto .pb")
      ->required();
  run_cmd->add_option("--output-dir", run.output_dir, "Where to write <output>.npy")->required();

  qs::cli::ExportArgs exp;
  CLI::App* export_cmd = app.add_subcommand(
      "export", "Build one model variant and write it as a standard QDQ ONNX model");
  export_cmd->add_option("--config", exp.config, "Server config YAML")
      ->required()
      ->check(CLI::ExistingFile);
  export_cmd->add_option("--model", exp.model, "Model name in the config")->required();
  export_cmd->add_option("--variant", exp.variant, "Variant of that model")->required();
  export_cmd->add_option("--out", exp.out, "ONNX file to write")->required();
  export_cmd->add_option("--set", exp.set, "Override a config key (repeatable)");

  qs::cli::ProbeArgs probe;
  CLI::App* probe_cmd = app.add_subcommand(
      "probe", "Exit 0 if a running server is ready (for Docker HEALTHCHECK)");
  probe_cmd->add_option("--address", probe.address, "Server address HOST:PORT")
      ->capture_default_str();
  probe_cmd->add_option("--timeout-ms", probe.timeout_ms, "Deadline of the check")
      ->capture_default_str();

  qs::cli::BenchArgs bench;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench", "Measure one model variant's in-process throughput and latency");
  bench_cmd->add_option("--model", bench.model, "ONNX model file")
      ->required()
      ->check(CLI::ExistingFile);
  auto* bench_config = bench_cmd->add_option("--config", bench.config,
                                             "Take the variant's policy from this config")
                           ->check(CLI::ExistingFile);
  bench_cmd->add_option("--variant", bench.variant, "Variant name in --config")
      ->needs(bench_config);
  bench_cmd->add_option("--preset", bench.preset, "Built-in variant instead of --config")
      ->check(CLI::IsMember({"fp32", "w8a8"}))
      ->excludes(bench_config);
  bench_cmd->add_option("--calibration-data", bench.calibration_data,
                        ".npy of float model inputs for calibration, or 'random'");
  bench_cmd->add_option("--calibration-samples", bench.calibration_samples,
                        "Calibration samples used (random: generated)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  bench_cmd->add_option("--input-data", bench.input_data,
                        ".npy of real inputs (batches of its rows, taken in turn) instead of "
                        "random ones: for models whose speed depends on the values (trees)")
      ->check(CLI::ExistingFile);
  bench_cmd->add_option("--batch", bench.batch, "Batch size")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  bench_cmd->add_option("--threads", bench.threads, "oneDNN threads per run")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  bench_cmd->add_option("--seconds", bench.seconds, "Measured duration after warm-up")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  bench_cmd->add_flag("--json", bench.json,
                      "Print one JSON object (model, variant, batch, threads, throughput_per_s, "
                      "p50_ms, p99_ms, ...)");
  bench_cmd->add_flag("--profile", bench.profile,
                      "Time every layer of the measured runs: a table by op type and the "
                      "slowest layers (with --json: a \"profile\" object)");

  CLI11_PARSE(app, argc, argv);
  if (*bench_cmd) return qs::cli::Bench(bench);
  if (*probe_cmd) return qs::cli::Probe(probe);
  if (*serve_cmd) {
    qs::LimitMallocArenas();  // before any thread: see server/malloc_arenas.h
    return qs::cli::Serve(serve);
  }
  if (*report_cmd) return qs::cli::Report(report);
  if (*run_cmd) return qs::cli::Run(run);
  if (*export_cmd) return qs::cli::Export(exp);
  return 2;
}
