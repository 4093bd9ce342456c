// quantserve report --config FILE [--json]
#include <cstdio>

#include <nlohmann/json.hpp>

#include "config/server_config.h"
#include "engine/model_builder.h"
#include "server/config_mapping.h"
#include "server/cli/commands.h"
#include "server/cli/report_table.h"

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
  if (!r.auto_steps.empty()) j["auto_search"] = r.auto_steps;
  j["layers"] = nlohmann::json::array();
  for (const auto& l : r.layers) {
    nlohmann::json jl = {
        {"name", l.name},         {"op", l.op},
        {"weight_bits", l.weight_bits}, {"method", l.method},
        {"src_dt", l.src_dt.empty() ? "f32" : l.src_dt},
        {"wei_dt", l.wei_dt.empty() ? "f32" : l.wei_dt},
        {"dst_dt", l.dst_dt.empty() ? "f32" : l.dst_dt},
        {"impl", l.impl},         {"quantized", l.quantized},
        {"activation_bits", l.activation_bits},
        {"weight_bytes", l.weight_bytes},
    };
    if (!l.reason.empty()) jl["fp32_reason"] = l.reason;
    if (l.quantized) {
      jl["calibration"] = l.calibration;
      jl["activation_range"] = {l.act_lo, l.act_hi};
      jl["weight_compute"] = "int8";  // codes on the int8 grid, run by s8 primitives
      if (l.grid_mapping_mse > 0) jl["grid_mapping_mse"] = l.grid_mapping_mse;
    }
    if (!l.optimizer.empty()) {
      jl["optimizer"] = l.optimizer;
      jl["loss_round_to_nearest"] = l.loss_rtn;
      jl["loss_optimized"] = l.loss_optimized;
    }
    j["layers"].push_back(jl);
  }
  return j;
}

}  // namespace

int Report(const ReportArgs& args) {
  auto config = LoadServerConfig(args.config, OverridesFromProcess(args.set));
  if (!config.ok()) {
    std::fprintf(stderr, "quantserve report: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  std::vector<BuiltModel> models;
  for (const auto& mc : config->models) {
    ModelSpec spec = ToModelSpec(mc);
    // Progress goes to stderr so that --json output stays parseable.
    spec.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    auto built = BuildModel(spec);
    if (!built.ok()) {
      std::fprintf(stderr, "quantserve report: %s\n", built.status().ToString().c_str());
      return 1;
    }
    models.push_back(std::move(*built));
  }
  if (!args.json) {
    PrintReportTable(stdout, models);
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
