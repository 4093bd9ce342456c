#include "engine/model_builder.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/buffer_cache.h"
#include "engine/cpu_features.h"
#include "engine/evaluate.h"
#include "engine/onnx_importer.h"
#include "engine/passes/passes.h"
#include "engine/quant/auto_bits.h"
#include "engine/quant/calibrator.h"
#include "engine/quant/layer_selector.h"
#include "engine/quant/quantize_embeddings.h"
#include "engine/quant/ml_quantize.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

absl::Status WithContext(const absl::Status& s, const std::string& context) {
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

// Everything a model's variants share: the optimized fp32 graph compiled,
// its evaluation, and (lazily) calibration statistics.
struct SharedState {
  std::shared_ptr<const CompiledModel> fp32;
  std::optional<Dataset> eval_data;
  std::optional<quant::CalibrationStats> calibration;
  std::vector<int32_t> fp32_predictions;
  EvaluationResult fp32_eval;
};

void Progress(const ModelSpec& spec, const std::string& step, Clock::time_point start) {
  if (spec.progress) {
    spec.progress(absl::StrFormat("model '%s' %s: %.2fs", spec.name, step, SecondsSince(start)));
  }
}

// The oneDNN primitive behind each reported layer.
void FillLayerKernels(const CompiledModel& model, VariantReport& report) {
  for (const auto& layer : model.Layers()) {
    for (auto& r : report.layers) {
      if (r.name != layer.node) continue;
      r.impl = layer.kernel.impl;
      r.src_dt = layer.kernel.src_dt;
      r.wei_dt = layer.kernel.wei_dt;
      r.dst_dt = layer.kernel.dst_dt;
      if (layer.kernel.weight_bytes > 0) r.weight_bytes = layer.kernel.weight_bytes;
    }
  }
}

// A variant that quantizes only embedding tables: no calibration needed.
absl::StatusOr<std::shared_ptr<const CompiledModel>> BuildEmbeddingsOnly(
    const ModelSpec& spec, const VariantSpec& v, SharedState& shared, VariantReport& report) {
  const auto start = Clock::now();
  const quant::EmbeddingPolicy policy = v.policy->embeddings.value_or(quant::EmbeddingPolicy{});
  quant::QuantizedGraph q{shared.fp32->graph(), {}, shared.fp32->weight_bytes()};
  RETURN_IF_ERROR(quant::QuantizeEmbeddings(q, policy));
  ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> model, CompiledModel::Compile(q.graph, spec.compile));
  Progress(spec, absl::StrCat("variant '", v.name, "' quantize embeddings + compile"), start);
  report.weight_bits = q.layers.empty() ? 32 : policy.bits;
  report.activation_bits = 32;
  report.method = "rowwise";
  report.weight_bytes = q.weight_bytes;
  report.layers = q.layers;
  return std::shared_ptr<const CompiledModel>(std::move(model));
}

// Classical ML models (ai.onnx.ml ops): engine/quant/ml_quantize.h.
absl::StatusOr<std::shared_ptr<const CompiledModel>> BuildMlQuantized(
    const ModelSpec& spec, const VariantSpec& v, SharedState& shared, VariantReport& report) {
  auto start = Clock::now();
  std::optional<Dataset> calibration;
  if (spec.calibration) {
    Shape sample_shape(shared.fp32->inputs()[0].shape.begin() + 1,
                       shared.fp32->inputs()[0].shape.end());
    ASSIGN_OR_RETURN(calibration, LoadDataset(*spec.calibration, sample_shape));
  }
  ASSIGN_OR_RETURN(quant::QuantizedGraph q,
                   quant::QuantizeMlGraph(*shared.fp32, *v.policy,
                                          calibration ? &*calibration : nullptr,
                                          spec.eval_batch_size));
  ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> model,
                   CompiledModel::Compile(q.graph, spec.compile));
  Progress(spec, absl::StrCat("variant '", v.name, "' quantize + compile"), start);
  report.weight_bits = 0;
  report.activation_bits = 0;
  for (const auto& l : q.layers) {
    report.weight_bits = std::max(report.weight_bits, l.weight_bits);
    report.activation_bits = std::max(report.activation_bits, l.activation_bits);
  }
  if (report.weight_bits == 0) report.weight_bits = report.activation_bits = 32;
  report.method = q.layers.empty() ? "fp32" : q.layers.front().method;
  report.weight_bytes = model->weight_bytes();
  report.layers = q.layers;
  FillLayerKernels(*model, report);
  return std::shared_ptr<const CompiledModel>(std::move(model));
}

absl::StatusOr<std::shared_ptr<const CompiledModel>> BuildQuantized(
    const ModelSpec& spec, const VariantSpec& v, SharedState& shared, VariantReport& report) {
  if (quant::HasMlNodes(shared.fp32->graph())) return BuildMlQuantized(spec, v, shared, report);
  auto start = Clock::now();
  if (!v.policy->quantize_layers) return BuildEmbeddingsOnly(spec, v, shared, report);
  if (!shared.calibration) {
    if (!spec.calibration) {
      return absl::FailedPreconditionError("a quantized variant needs a calibration set");
    }
    Shape sample_shape(shared.fp32->inputs()[0].shape.begin() + 1,
                       shared.fp32->inputs()[0].shape.end());
    ASSIGN_OR_RETURN(Dataset data, LoadDataset(*spec.calibration, sample_shape));
    quant::CalibrationOptions options;
    options.batch_size = spec.eval_batch_size;
    // Input rows are only needed to optimize weights; skip sampling them
    // (up to max_rows × K floats per layer) when no variant optimizes.
    const bool any_optimize = std::any_of(
        spec.variants.begin(), spec.variants.end(),
        [](const VariantSpec& vs) { return vs.policy && vs.policy->optimize; });
    if (!any_optimize) options.max_rows = 0;
    // Histogram bins only matter to percentile / mse / kl ranges.
    options.histograms = std::any_of(
        spec.variants.begin(), spec.variants.end(), [](const VariantSpec& vs) {
          if (!vs.policy) return false;
          auto binned = [](const quant::ActivationPolicy& a) {
            return a.calibration != quant::CalibrationMethod::kMinMax;
          };
          return binned(vs.policy->activations) ||
                 std::any_of(vs.policy->layers.begin(), vs.policy->layers.end(),
                             [&](const quant::LayerOverride& o) {
                               return o.activations && binned(*o.activations);
                             });
        });
    ASSIGN_OR_RETURN(shared.calibration,
                     quant::CalibrationStats::Collect(*shared.fp32, data, options));
    Progress(spec, absl::StrCat("calibrate on ", data.size(), " samples"), start);
    start = Clock::now();
  }
  quant::QuantPolicy policy = *v.policy;
  policy.weights.max_abs_code = MaxSafeWeightCode();
  const Graph& graph = shared.fp32->graph();
  ASSIGN_OR_RETURN(std::vector<quant::LayerPlan> plans, quant::SelectLayers(graph, policy));
  auto quantize_and_compile = [&](const std::vector<quant::LayerPlan>& layer_plans)
      -> absl::StatusOr<std::pair<quant::QuantizedGraph, std::unique_ptr<CompiledModel>>> {
    ASSIGN_OR_RETURN(quant::QuantizedGraph q, quant::QuantizeGraph(graph, layer_plans,
                                                                   *shared.calibration,
                                                                   policy.optimize));
    if (policy.embeddings) RETURN_IF_ERROR(quant::QuantizeEmbeddings(q, *policy.embeddings));
    ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> m, CompiledModel::Compile(q.graph, spec.compile));
    return std::make_pair(std::move(q), std::move(m));
  };
  if (policy.auto_bits) {
    if (!shared.eval_data || shared.eval_data->labels.empty()) {
      return absl::FailedPreconditionError("auto bit widths need a labelled evaluation set");
    }
    // The search screens candidates on the first 2,000 evaluation samples
    // and confirms the one it accepts on the whole set.
    const Dataset& full = *shared.eval_data;
    Dataset screen_set;
    const int64_t n = std::min<int64_t>(2000, full.size());
    screen_set.inputs = full.Batch(0, n);
    screen_set.labels = Tensor::FromVector<int64_t>(
        {n}, std::vector<int64_t>(full.labels.data<int64_t>(), full.labels.data<int64_t>() + n));
    auto evaluator = [&](const Dataset& data) {
      return [&, data_ptr = &data](const std::vector<quant::LayerPlan>& p)
                 -> absl::StatusOr<double> {
        ASSIGN_OR_RETURN(auto built, quantize_and_compile(p));
        ASSIGN_OR_RETURN(EvaluationResult e,
                         EvaluateClassifier(*built.second, *data_ptr, spec.eval_batch_size));
        return e.accuracy;
      };
    };
    ASSIGN_OR_RETURN(EvaluationResult fp32_screen,
                     EvaluateClassifier(*shared.fp32, screen_set, spec.eval_batch_size));
    ASSIGN_OR_RETURN(quant::AutoBitsResult result,
                     quant::SearchBitWidths(plans, *policy.auto_bits, fp32_screen.accuracy,
                                            evaluator(screen_set), shared.fp32_eval.accuracy,
                                            evaluator(full)));
    for (const auto& step : result.steps) Progress(spec, "auto: " + step, start);
    if (!result.met_budget) {
      Progress(spec, absl::StrCat("auto: budget not met even with every layer in fp32"), start);
    }
    plans = result.plans;
    report.auto_steps = result.steps;
  }
  ASSIGN_OR_RETURN(auto built, quantize_and_compile(plans));
  quant::QuantizedGraph& q = built.first;
  std::unique_ptr<CompiledModel>& model = built.second;
  Progress(spec, absl::StrCat("variant '", v.name, "' quantize",
                              policy.optimize ? " + optimize" : "", " + compile"), start);
  start = Clock::now();
  report.weight_bits = 0;
  for (const auto& l : q.layers) {
    if (l.quantized) report.weight_bits = std::max(report.weight_bits, l.weight_bits);
  }
  if (report.weight_bits == 0) report.weight_bits = 32;
  report.activation_bits = policy.activations.bits;
  report.method = quant::WeightMethodName(policy.weights.method);
  report.weight_bytes = q.weight_bytes;
  report.layers = q.layers;
  FillLayerKernels(*model, report);
  return std::shared_ptr<const CompiledModel>(std::move(model));
}

}  // namespace

const BuiltVariant* BuiltModel::Find(const std::string& variant) const {
  for (const auto& v : variants) {
    if (v.report.name == variant) return &v;
  }
  return nullptr;
}

namespace {

absl::StatusOr<BuiltModel> BuildAllVariants(const ModelSpec& spec) {
  const std::string context = absl::StrCat("model '", spec.name, "'");
  auto start = Clock::now();
  auto graph = ImportOnnxFile(spec.path);
  if (!graph.ok()) return WithContext(graph.status(), context);
  SharedState shared;
  auto fp32 = CompiledModel::Compile(std::move(*graph), spec.compile);
  if (!fp32.ok()) return WithContext(fp32.status(), context);
  shared.fp32 = std::move(*fp32);
  Progress(spec, "load + compile fp32", start);

  if (spec.evaluation) {
    start = Clock::now();
    Shape sample_shape(shared.fp32->inputs()[0].shape.begin() + 1,
                       shared.fp32->inputs()[0].shape.end());
    auto data = LoadDataset(*spec.evaluation, sample_shape);
    if (!data.ok()) return WithContext(data.status(), context + " evaluation set");
    shared.eval_data = std::move(*data);
    // Every variant is compared with the fp32 model's predictions.
    auto eval = EvaluateClassifier(*shared.fp32, *shared.eval_data, spec.eval_batch_size);
    if (!eval.ok()) return WithContext(eval.status(), context + " fp32 evaluation");
    shared.fp32_eval = *eval;
    shared.fp32_predictions = eval->predictions;
    Progress(spec, "evaluate fp32", start);
  }

  BuiltModel built;
  built.name = spec.name;
  for (const VariantSpec& v : spec.variants) {
    const std::string vcontext = absl::StrCat(context, " variant '", v.name, "'");
    BuiltVariant variant;
    variant.report.name = v.name;
    start = Clock::now();
    if (!v.policy) {
      variant.model = shared.fp32;
      variant.report.weight_bytes = shared.fp32->weight_bytes();
    } else {
      auto model = BuildQuantized(spec, v, shared, variant.report);
      if (!model.ok()) return WithContext(model.status(), vcontext);
      variant.model = std::move(*model);
    }
    variant.report.build_seconds = SecondsSince(start);
    if (shared.eval_data) {
      start = Clock::now();
      EvaluationResult eval = shared.fp32_eval;
      if (v.policy) {
        auto e = EvaluateClassifier(*variant.model, *shared.eval_data, spec.eval_batch_size);
        if (!e.ok()) return WithContext(e.status(), vcontext + " evaluation");
        eval = std::move(*e);
      }
      variant.report.evaluated = !shared.eval_data->labels.empty();
      variant.report.eval_samples = eval.samples;
      variant.report.accuracy = eval.accuracy;
      variant.report.eval_seconds = eval.seconds;
      variant.report.top1_agreement = Top1Agreement(eval.predictions, shared.fp32_predictions);
      Progress(spec, absl::StrFormat("variant '%s' evaluate (accuracy %.2f%%)", v.name,
                                     100 * eval.accuracy), start);
    }
    built.variants.push_back(std::move(variant));
  }
  return built;
}

}  // namespace

absl::StatusOr<BuiltModel> BuildModel(const ModelSpec& spec) {
  auto built = BuildAllVariants(spec);
  // The calibration and evaluation runs' activation buffers (other batch
  // sizes than serving uses) would otherwise hold the cache's cap, and the
  // serving runs' buffers could then not be kept.
  BufferCache::Global().Clear();
  return built;
}

}  // namespace qs
