// In-process engine benchmark (Google Benchmark): every model × variant ×
// batch × intra-op threads given on the command line, reporting items
// (samples) per second. Model-agnostic: any ONNX file whose only dynamic
// dimension is the batch; quantized variants calibrate on random inputs
// (speed is representative, accuracy is not — see `quantserve report`).
//
//   engine_bench [--models=A.onnx,B.onnx] [--variants=fp32,w8a8]
//                [--batches=1,16] [--threads=1,2] [--calibration_samples=64]
//                [--benchmark_* flags, e.g. --benchmark_format=json]
//
// Benchmarks are named <model stem>/<variant>/batch:<N>/threads:<T>.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/model_builder.h"
#include "engine/random_inputs.h"

namespace {

namespace fs = std::filesystem;

struct Options {
  std::vector<std::string> models;
  std::vector<std::string> variants = {"fp32", "w8a8"};
  std::vector<int64_t> batches = {1, 16};
  std::vector<int> threads = {1, 2};
  int64_t calibration_samples = 64;
};

// Built variants, shared by the benchmarks of one (model, variant, threads):
// a build (calibration, quantization, compilation) happens once, outside
// any timed loop.
class ModelCache {
 public:
  explicit ModelCache(int64_t calibration_samples) : calibration_samples_(calibration_samples) {}

  absl::StatusOr<std::shared_ptr<const qs::CompiledModel>> Get(const std::string& path,
                                                               const std::string& variant,
                                                               int threads) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string key = path + "|" + variant + "|" + std::to_string(threads);
    auto it = built_.find(key);
    if (it != built_.end()) return it->second;
    auto model = Build(path, variant, threads);
    if (!model.ok()) return model.status();
    built_[key] = *model;
    return *model;
  }

 private:
  absl::StatusOr<std::shared_ptr<const qs::CompiledModel>> Build(const std::string& path,
                                                                 const std::string& variant,
                                                                 int threads) {
    qs::ModelSpec spec;
    spec.name = fs::path(path).stem().string();
    spec.path = path;
    spec.compile.intra_op_threads = threads;
    qs::VariantSpec v{variant, std::nullopt};
    std::string calibration;
    if (variant == "w8a8") {
      // The `quantserve bench --preset w8a8` policy: per-channel symmetric
      // 8-bit weights, 8-bit minmax activations (the policy defaults).
      v.policy = qs::quant::QuantPolicy{};
      auto file = qs::WriteRandomCalibrationNpy(path, calibration_samples_, 7);
      if (!file.ok()) return file.status();
      calibration = *file;
      qs::DatasetSpec data;
      data.format = qs::DatasetSpec::Format::kNpy;
      data.inputs = calibration;
      data.scale = 1.0f;
      spec.calibration = data;
    } else if (variant != "fp32") {
      return absl::InvalidArgumentError("--variants: unknown variant '" + variant +
                                        "' (known: fp32, w8a8)");
    }
    spec.variants = {v};
    auto built = qs::BuildModel(spec);
    if (!calibration.empty()) fs::remove(calibration);
    if (!built.ok()) return built.status();
    return built->variants.front().model;
  }

  std::mutex mu_;
  int64_t calibration_samples_;
  std::map<std::string, std::shared_ptr<const qs::CompiledModel>> built_;
};

// Set when any benchmark fails, so that the exit code says so (the smoke
// test in tests/bench relies on it).
std::atomic<bool> g_failed{false};

void Fail(benchmark::State& state, const absl::Status& status) {
  g_failed = true;
  state.SkipWithError(status.ToString().c_str());
}

void RunVariant(benchmark::State& state, ModelCache* cache, const std::string& path,
                const std::string& variant, int64_t batch, int threads) {
  auto model = cache->Get(path, variant, threads);
  if (!model.ok()) {
    Fail(state, model.status());
    return;
  }
  auto inputs = qs::RandomInputs((*model)->inputs(), batch, 1);
  if (!inputs.ok()) {
    Fail(state, inputs.status());
    return;
  }
  // Warm-up: the plan for this shape, oneDNN primitives, the OpenMP team.
  for (int i = 0; i < 2; ++i) {
    auto out = (*model)->RunOrdered(*inputs);
    if (!out.ok()) {
      Fail(state, out.status());
      return;
    }
  }
  for (auto _ : state) {
    auto out = (*model)->RunOrdered(*inputs);
    if (!out.ok()) {
      Fail(state, out.status());
      break;
    }
    benchmark::DoNotOptimize(out->data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["batch"] = static_cast<double>(batch);
  state.counters["threads"] = threads;
}

template <typename T>
bool ParseList(const std::string& value, std::vector<T>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipEmpty())) {
    if constexpr (std::is_same_v<T, std::string>) {
      out->emplace_back(part);
    } else {
      T n;
      if (!absl::SimpleAtoi(part, &n) || n < 1) return false;
      out->push_back(n);
    }
  }
  return !out->empty();
}

// Our flags (Google Benchmark has removed its own from argv already).
bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    bool ok = false;
    if (key == "--models") ok = ParseList(value, &o->models);
    else if (key == "--variants") ok = ParseList(value, &o->variants);
    else if (key == "--batches") ok = ParseList(value, &o->batches);
    else if (key == "--threads") ok = ParseList(value, &o->threads);
    else if (key == "--calibration_samples") {
      ok = absl::SimpleAtoi(value, &o->calibration_samples) && o->calibration_samples > 0;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "engine_bench: bad argument '%s'\nusage: engine_bench [--models=A.onnx,...] "
                   "[--variants=fp32,w8a8] [--batches=1,16] [--threads=1,2] "
                   "[--calibration_samples=64] [--benchmark_* flags]\n",
                   arg.c_str());
      return false;
    }
  }
  if (o->models.empty()) o->models = {std::string(QS_SOURCE_DIR) + "/models/fmnist_cnn.onnx"};
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  Options options;
  if (!ParseOptions(argc, argv, &options)) return 2;
  static ModelCache cache(options.calibration_samples);
  for (const std::string& path : options.models) {
    const std::string stem = fs::path(path).stem().string();
    for (const std::string& variant : options.variants) {
      for (int64_t batch : options.batches) {
        for (int threads : options.threads) {
          const std::string name = stem + "/" + variant + "/batch:" + std::to_string(batch) +
                                   "/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), RunVariant, &cache, path, variant, batch,
                                       threads)
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
