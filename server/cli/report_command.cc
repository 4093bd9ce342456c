// quantserve report --config FILE [--json]
#include <cstdio>

#include <nlohmann/json.hpp>

#include "config/server_config.h"
#include "engine/model_builder.h"
#include "server/config_mapping.h"
#include "server/cli/commands.h"

namespace qs::cli {
namespace {

nlohmann::json VariantJson(const VariantReport& r) {
  nlohmann::json j = {
      {"name", r.name},
      {"weight_bits", r.weight_bits},
      {"activation_bits", r.activation_bits},
      {"method", r.method},
      {"weight_bytes", r.weight_bytes},
      {"accuracy", nullptr},
      {"top1_agreement", nullptr},
      {"build_seconds", r.build_seconds},
      {"eval_samples", r.eval_samples},
      {"eval_seconds", r.eval_seconds},
  };
  if (r.evaluated) {
    j["accuracy"] = r.accuracy;
    j["top1_agreement"] = r.top1_agreement;
  }
  return j;
}

void PrintTable(const std::vector<BuiltModel>& models) {
  std::printf("%-16s %-10s %5s %5s %-8s %12s %9s %9s %8s\n", "model", "variant", "wbits",
              "abits", "method", "weight_bytes", "accuracy", "agree_fp32", "build_s");
  for (const auto& m : models) {
    for (const auto& v : m.variants) {
      const VariantReport& r = v.report;
      std::printf("%-16s %-10s %5d %5d %-8s %12lld", m.name.c_str(), r.name.c_str(),
                  r.weight_bits, r.activation_bits, r.method.c_str(),
                  static_cast<long long>(r.weight_bytes));
      if (r.evaluated) {
        std::printf(" %8.2f%% %9.2f%%", 100 * r.accuracy, 100 * r.top1_agreement);
      } else {
        std::printf(" %9s %10s", "-", "-");
      }
      std::printf(" %8.2f\n", r.build_seconds);
    }
  }
}

}  // namespace

int Report(const ReportArgs& args) {
  auto config = LoadServerConfig(args.config);
  if (!config.ok()) {
    std::fprintf(stderr, "quantserve report: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  std::vector<BuiltModel> models;
  for (const auto& mc : config->models) {
    auto built = BuildModel(ToModelSpec(mc));
    if (!built.ok()) {
      std::fprintf(stderr, "quantserve report: %s\n", built.status().ToString().c_str());
      return 1;
    }
    models.push_back(std::move(*built));
  }
  if (!args.json) {
    PrintTable(models);
    return 0;
  }
  nlohmann::json out = {{"models", nlohmann::json::array()}};
  for (const auto& m : models) {
    nlohmann::json jm = {{"name", m.name}, {"variants", nlohmann::json::array()}};
    for (const auto& v : m.variants) jm["variants"].push_back(VariantJson(v.report));
    out["models"].push_back(jm);
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace qs::cli
