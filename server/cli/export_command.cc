// quantserve export --config FILE --model NAME --variant V --out FILE.onnx
//
// Builds one variant of one configured model (calibrating and evaluating as
// `report` does, but nothing else) and writes it as a standard QDQ ONNX model
// that other runtimes can load (see engine/quant/qdq_export.h).
#include <cstdio>
#include <fstream>

#include "absl/strings/str_join.h"
#include "config/server_config.h"
#include "engine/model_builder.h"
#include "engine/quant/qdq_export.h"
#include "server/cli/commands.h"
#include "server/config_mapping.h"

namespace qs::cli {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "quantserve export: %s\n", message.c_str());
  return 1;
}

}  // namespace

int Export(const ExportArgs& args) {
  auto config = LoadServerConfig(args.config, OverridesFromProcess(args.set));
  if (!config.ok()) return Fail(std::string(config.status().message()));
  const ModelConfig* model = nullptr;
  std::vector<std::string> model_names;
  for (const auto& mc : config->models) {
    model_names.push_back(mc.name);
    if (mc.name == args.model) model = &mc;
  }
  if (model == nullptr) {
    return Fail("unknown model '" + args.model + "' in " + args.config +
                " (known: " + absl::StrJoin(model_names, ", ") + ")");
  }
  ModelSpec spec = ToModelSpec(*model);
  std::vector<std::string> variant_names;
  std::vector<VariantSpec> selected;
  for (const auto& v : spec.variants) {
    variant_names.push_back(v.name);
    if (v.name == args.variant) selected.push_back(v);
  }
  if (selected.empty()) {
    return Fail("unknown variant '" + args.variant + "' of model '" + args.model +
                "' (known: " + absl::StrJoin(variant_names, ", ") + ")");
  }
  spec.variants = std::move(selected);
  spec.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto built = BuildModel(spec);
  if (!built.ok()) return Fail(built.status().ToString());
  const BuiltVariant& variant = built->variants.front();
  auto bytes = quant::ExportQdqOnnx(variant.model->graph(), args.model + "_" + args.variant);
  if (!bytes.ok()) return Fail(bytes.status().ToString());
  std::ofstream out(args.out, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return Fail("cannot write '" + args.out + "'");
  if (variant.report.evaluated) {
    std::printf("%s/%s: accuracy %.2f%% on %lld samples\n", args.model.c_str(),
                args.variant.c_str(), 100 * variant.report.accuracy,
                static_cast<long long>(variant.report.eval_samples));
  }
  std::printf("wrote %s (%zu bytes)\n", args.out.c_str(), bytes->size());
  return 0;
}

}  // namespace qs::cli
