#include "server/cli/profile_report.h"

#include <algorithm>
#include <vector>

namespace qs::cli {
namespace {

double PerRun(const RunProfile& p, double total_ms) {
  return p.runs() > 0 ? total_ms / static_cast<double>(p.runs()) : 0.0;
}

double Percent(const RunProfile& p, double total_ms) {
  return p.run_ms() > 0 ? 100.0 * total_ms / p.run_ms() : 0.0;
}

double KernelsMs(const RunProfile& p) {
  double sum = 0;
  for (const auto& l : p.layers()) sum += l.total_ms;
  return sum;
}

}  // namespace

void PrintProfile(FILE* out, const RunProfile& p, int top_layers) {
  const double kernels = KernelsMs(p);
  std::fprintf(out, "\nprofile over %lld runs: %.3f ms per run, %.3f ms in kernels (%.1f %%)\n",
               static_cast<long long>(p.runs()), PerRun(p, p.run_ms()), PerRun(p, kernels),
               Percent(p, kernels));
  std::fprintf(out, "  %-24s %6s %10s %7s\n", "op type", "layers", "ms/run", "%");
  for (const auto& t : p.ByOpType()) {
    std::fprintf(out, "  %-24s %6d %10.3f %6.1f%%\n", t.op_type.c_str(), t.layers,
                 PerRun(p, t.total_ms), Percent(p, t.total_ms));
  }
  std::vector<RunProfile::Layer> layers = p.layers();
  std::stable_sort(layers.begin(), layers.end(),
                   [](const auto& a, const auto& b) { return a.total_ms > b.total_ms; });
  if (static_cast<int>(layers.size()) > top_layers) layers.resize(top_layers);
  std::fprintf(out, "  %-40s %-18s %-26s %10s %7s\n", "layer", "op type", "impl", "ms/run", "%");
  for (const auto& l : layers) {
    std::fprintf(out, "  %-40s %-18s %-26s %10.3f %6.1f%%\n", l.name.c_str(), l.op_type.c_str(),
                 l.impl.empty() ? "-" : l.impl.c_str(), PerRun(p, l.total_ms),
                 Percent(p, l.total_ms));
  }
}

nlohmann::json ProfileJson(const RunProfile& p) {
  nlohmann::json j;
  j["runs"] = p.runs();
  j["run_ms"] = PerRun(p, p.run_ms());
  j["kernels_ms"] = PerRun(p, KernelsMs(p));
  j["by_op_type"] = nlohmann::json::array();
  for (const auto& t : p.ByOpType()) {
    j["by_op_type"].push_back({{"op_type", t.op_type},
                               {"layers", t.layers},
                               {"ms_per_run", PerRun(p, t.total_ms)},
                               {"percent", Percent(p, t.total_ms)}});
  }
  j["layers"] = nlohmann::json::array();
  for (const auto& l : p.layers()) {
    j["layers"].push_back({{"name", l.name},
                           {"op_type", l.op_type},
                           {"impl", l.impl},
                           {"ms_per_run", PerRun(p, l.total_ms)},
                           {"percent", Percent(p, l.total_ms)}});
  }
  return j;
}

}  // namespace qs::cli
