// quantserve bench: the in-process throughput and latency of one model
// variant at a fixed batch size and thread count — the number to compare
// with other runtimes before any network is involved.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "config/server_config.h"
#include "engine/model_builder.h"
#include "engine/random_inputs.h"
#include "server/cli/commands.h"
#include "server/cli/profile_report.h"
#include "server/config_mapping.h"

namespace qs::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int Fail(const std::string& message) {
  std::fprintf(stderr, "quantserve bench: %s\n", message.c_str());
  return 1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()));
  return v[i];
}

// The variant to build, as config structs (so presets and config files go
// through the same mapping as `serve`).
absl::StatusOr<ModelConfig> BenchModelConfig(const BenchArgs& args, std::string* variant_name) {
  ModelConfig mc;
  mc.name = fs::path(args.model).stem().string();
  mc.path = fs::absolute(args.model).string();
  if (!args.config.empty()) {
    auto config = LoadServerConfig(args.config);
    if (!config.ok()) return config.status();
    const VariantConfig* chosen = nullptr;
    const ModelConfig* owner = nullptr;
    for (const ModelConfig& m : config->models) {
      for (const VariantConfig& v : m.variants) {
        if (v.name != args.variant) continue;
        // A model of the config on the same file wins over the first match.
        if (chosen == nullptr || fs::equivalent(m.path, args.model)) {
          chosen = &v;
          owner = &m;
        }
      }
    }
    if (chosen == nullptr) {
      return absl::NotFoundError("--variant: no model in " + args.config + " has a variant '" +
                                 args.variant + "'");
    }
    mc.variants = {*chosen};
    if (chosen->quantized() && args.calibration_data.empty()) mc.calibration = owner->calibration;
    *variant_name = chosen->name;
  } else if (args.preset == "fp32") {
    mc.variants = {VariantConfig{"fp32"}};
    *variant_name = "fp32";
  } else {  // w8a8: per-channel symmetric 8-bit weights, 8-bit minmax activations
    VariantConfig v{"w8a8"};
    v.weights = WeightQuantConfig{};
    v.activations = ActivationQuantConfig{};
    mc.variants = {v};
    *variant_name = "w8a8";
  }
  mc.default_variant = *variant_name;
  if (mc.variants.front().quantized() && !mc.calibration) {
    if (args.calibration_data.empty()) {
      return absl::InvalidArgumentError(
          "--calibration-data: needed for a quantized variant (a .npy of float inputs), or "
          "'random' to calibrate on random inputs (speed is then representative, accuracy not)");
    }
    DatasetConfig calib;
    calib.format = DatasetConfig::Format::kNpy;
    calib.inputs = args.calibration_data;
    calib.scale = 1.0f;  // already model inputs
    calib.offset = 0.0f;
    calib.limit = args.calibration_samples;
    mc.calibration = calib;
  }
  return mc;
}

}  // namespace

int Bench(const BenchArgs& args) {
  if (args.config.empty() == args.preset.empty()) {
    return Fail("give exactly one of --config FILE --variant V, or --preset fp32|w8a8");
  }
  if (!args.config.empty() && args.variant.empty()) return Fail("--config needs --variant");
  std::string variant_name;
  BenchArgs resolved = args;
  std::string random_calibration;  // a temporary .npy, removed at the end
  if (args.calibration_data == "random") {
    auto path = WriteRandomCalibrationNpy(args.model, args.calibration_samples, 7);
    if (!path.ok()) return Fail(path.status().ToString());
    random_calibration = *path;
    resolved.calibration_data = random_calibration;
  }
  auto mc = BenchModelConfig(resolved, &variant_name);
  if (!mc.ok()) {
    if (!random_calibration.empty()) fs::remove(random_calibration);
    return Fail(std::string(mc.status().message()));
  }
  ModelSpec spec = ToModelSpec(*mc);
  spec.compile.intra_op_threads = args.threads;
  spec.evaluation.reset();
  if (!args.json) {
    spec.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }
  const auto build_start = Clock::now();
  auto built = BuildModel(spec);
  const double build_seconds = std::chrono::duration<double>(Clock::now() - build_start).count();
  if (!random_calibration.empty()) fs::remove(random_calibration);
  if (!built.ok()) return Fail(built.status().ToString());
  const CompiledModel& model = *built->variants.front().model;

  // One batch of random inputs, or the distinct batches of --input-data's
  // rows taken in turn.
  std::vector<std::vector<Tensor>> batches;
  if (args.input_data.empty()) {
    auto inputs = RandomInputs(model.inputs(), args.batch, 1);
    if (!inputs.ok()) return Fail(inputs.status().ToString());
    batches.push_back(*std::move(inputs));
  } else {
    auto from_file = BatchesFromNpy(model.inputs(), args.input_data, args.batch);
    if (!from_file.ok()) return Fail(from_file.status().ToString());
    batches = *std::move(from_file);
  }
  size_t next = 0;
  auto run_once = [&]() { return model.RunOrdered(batches[next++ % batches.size()]); };
  // Warm-up: plans for this shape, oneDNN primitives, OpenMP threads.
  const auto warm_until = Clock::now() + std::chrono::milliseconds(500);
  for (int i = 0; i < 3 || Clock::now() < warm_until; ++i) {
    auto out = run_once();
    if (!out.ok()) return Fail(out.status().ToString());
  }
  std::vector<double> ms;
  RunProfile profile;
  RunProfile* measured = args.profile ? &profile : nullptr;
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(args.seconds);
  while (Clock::now() < until || ms.size() < 3) {
    const auto t0 = Clock::now();
    auto out = model.RunOrdered(batches[next++ % batches.size()], nullptr, measured);
    if (!out.ok()) return Fail(out.status().ToString());
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const double throughput = static_cast<double>(ms.size()) * args.batch / wall;
  double mean = 0;
  for (double m : ms) mean += m;
  mean /= static_cast<double>(ms.size());

  if (args.json) {
    nlohmann::json j;
    j["model"] = args.model;
    j["variant"] = variant_name;
    j["inputs"] = args.input_data.empty() ? std::string("random") : args.input_data;
    j["batch"] = args.batch;
    j["threads"] = args.threads;
    j["runs"] = ms.size();
    j["throughput_per_s"] = throughput;
    j["mean_ms"] = mean;
    j["p50_ms"] = Percentile(ms, 50);
    j["p99_ms"] = Percentile(ms, 99);
    j["weight_bytes"] = built->variants.front().report.weight_bytes;
    j["build_seconds"] = build_seconds;
    if (args.profile) j["profile"] = ProfileJson(profile);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s %s: batch %lld, %d thread(s), %zu runs in %.2f s\n", args.model.c_str(),
                variant_name.c_str(), static_cast<long long>(args.batch), args.threads,
                ms.size(), wall);
    std::printf("throughput %.1f samples/s, latency mean %.3f ms, p50 %.3f ms, p99 %.3f ms\n",
                throughput, mean, Percentile(ms, 50), Percentile(ms, 99));
    if (args.profile) PrintProfile(stdout, profile, 15);
  }
  return 0;
}

}  // namespace qs::cli
