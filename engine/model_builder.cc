#include "engine/model_builder.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/evaluate.h"
#include "engine/onnx_importer.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::Status WithContext(const absl::Status& s, const std::string& context) {
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

}  // namespace

const BuiltVariant* BuiltModel::Find(const std::string& variant) const {
  for (const auto& v : variants) {
    if (v.report.name == variant) return &v;
  }
  return nullptr;
}

absl::StatusOr<BuiltModel> BuildModel(const ModelSpec& spec) {
  const std::string context = absl::StrCat("model '", spec.name, "'");
  auto graph = ImportOnnxFile(spec.path);
  if (!graph.ok()) return WithContext(graph.status(), context);

  std::optional<Dataset> eval_data;
  if (spec.evaluation) {
    Shape sample_shape;
    if (!graph->inputs.empty() && !graph->inputs[0].shape.empty()) {
      sample_shape.assign(graph->inputs[0].shape.begin() + 1, graph->inputs[0].shape.end());
    }
    auto data = LoadDataset(*spec.evaluation, sample_shape);
    if (!data.ok()) return WithContext(data.status(), context + " evaluation set");
    eval_data = std::move(*data);
  }

  BuiltModel built;
  built.name = spec.name;
  std::vector<int32_t> fp32_predictions;
  for (const VariantSpec& v : spec.variants) {
    const std::string vcontext = absl::StrCat(context, " variant '", v.name, "'");
    const auto start = std::chrono::steady_clock::now();
    auto model = CompiledModel::Compile(*graph, spec.compile);
    if (!model.ok()) return WithContext(model.status(), vcontext);
    BuiltVariant variant;
    variant.report.name = v.name;
    variant.report.build_seconds = SecondsSince(start);
    variant.report.weight_bytes = (*model)->weight_bytes();
    variant.model = std::move(*model);
    if (eval_data) {
      auto eval = EvaluateClassifier(*variant.model, *eval_data, spec.eval_batch_size);
      if (!eval.ok()) return WithContext(eval.status(), vcontext + " evaluation");
      variant.report.evaluated = !eval_data->labels.empty();
      variant.report.eval_samples = eval->samples;
      variant.report.accuracy = eval->accuracy;
      variant.report.eval_seconds = eval->seconds;
      // Every variant is compared with the model's fp32 predictions; the
      // fp32 variant is computed first (it is the unquantized graph).
      if (fp32_predictions.empty()) fp32_predictions = eval->predictions;
      variant.report.top1_agreement = Top1Agreement(eval->predictions, fp32_predictions);
    }
    built.variants.push_back(std::move(variant));
  }
  return built;
}

}  // namespace qs
