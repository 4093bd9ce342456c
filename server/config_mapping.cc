#include "server/config_mapping.h"

namespace qs {

DatasetSpec ToDatasetSpec(const DatasetConfig& data) {
  DatasetSpec spec;
  spec.format = data.format == DatasetConfig::Format::kIdx ? DatasetSpec::Format::kIdx
                                                           : DatasetSpec::Format::kNpy;
  spec.inputs = data.inputs;
  spec.named_inputs = data.named_inputs;
  spec.labels = data.labels;
  spec.scale = data.scale;
  spec.offset = data.offset;
  spec.limit = data.limit;
  return spec;
}

namespace {

quant::WeightQuantSpec ToWeightSpec(const WeightQuantConfig& w) {
  quant::WeightQuantSpec spec;
  switch (w.method) {
    case WeightMethodConfig::kLinear: spec.method = quant::WeightMethod::kLinear; break;
    case WeightMethodConfig::kLog2: spec.method = quant::WeightMethod::kLog2; break;
    case WeightMethodConfig::kKMeans: spec.method = quant::WeightMethod::kKMeans; break;
    case WeightMethodConfig::kSign: spec.method = quant::WeightMethod::kSign; break;
  }
  spec.bits = w.bits;
  spec.symmetric = w.symmetric;
  spec.per_channel = w.per_channel;
  return spec;
}

quant::ActivationPolicy ToActivationPolicy(const ActivationQuantConfig& a) {
  quant::ActivationPolicy p;
  p.bits = a.bits;
  p.percentile = a.percentile;
  switch (a.calibration) {
    case CalibrationConfig::kMinMax: p.calibration = quant::CalibrationMethod::kMinMax; break;
    case CalibrationConfig::kPercentile: p.calibration = quant::CalibrationMethod::kPercentile; break;
    case CalibrationConfig::kMse: p.calibration = quant::CalibrationMethod::kMse; break;
    case CalibrationConfig::kKl: p.calibration = quant::CalibrationMethod::kKl; break;
  }
  return p;
}

quant::OptimizePolicy ToOptimizePolicy(const OptimizeConfig& o) {
  quant::OptimizePolicy p;
  p.algorithm = o.algorithm == OptimizerConfig::kGd    ? quant::Optimizer::kGd
                : o.algorithm == OptimizerConfig::kSgd ? quant::Optimizer::kSgd
                                                       : quant::Optimizer::kAdam;
  p.loss = o.loss == LossConfig::kMse ? quant::Loss::kMse : quant::Loss::kCrossEntropy;
  p.learn_rounding = o.learn_rounding;
  p.learn_scales = o.learn_scales;
  p.iterations = o.iterations;
  p.learning_rate = o.learning_rate;
  p.batch_size = o.batch_size;
  p.seed = o.seed;
  return p;
}

std::optional<quant::QuantPolicy> ToPolicy(const VariantConfig& v) {
  if (!v.quantized() && !v.embeddings) return std::nullopt;
  quant::QuantPolicy p;
  p.quantize_layers = v.quantized();
  if (v.embeddings) p.embeddings = quant::EmbeddingPolicy{v.embeddings->bits};
  if (v.weights) p.weights = ToWeightSpec(*v.weights);
  if (v.activations) p.activations = ToActivationPolicy(*v.activations);
  if (v.optimize) p.optimize = ToOptimizePolicy(*v.optimize);
  for (const auto& o : v.layers) {
    quant::LayerOverride lo;
    lo.op = o.op;
    lo.name = o.name;
    lo.fp32 = o.fp32;
    if (o.weights) lo.weights = ToWeightSpec(*o.weights);
    if (o.activations) lo.activations = ToActivationPolicy(*o.activations);
    lo.location = o.location;
    p.layers.push_back(std::move(lo));
  }
  if (v.trees) p.trees = quant::TreePolicy{v.trees->threshold_bits, v.trees->leaf_bits};
  if (v.auto_bits) {
    p.auto_bits = quant::AutoBits{v.auto_bits->max_accuracy_drop, v.auto_bits->candidate_bits};
  }
  return p;
}

}  // namespace

ModelSpec ToModelSpec(const ModelConfig& model) {
  ModelSpec spec;
  spec.name = model.name;
  spec.path = model.path;
  for (const auto& v : model.variants) spec.variants.push_back(VariantSpec{v.name, ToPolicy(v)});
  if (model.evaluation) spec.evaluation = ToDatasetSpec(*model.evaluation);
  if (model.calibration) spec.calibration = ToDatasetSpec(*model.calibration);
  spec.eval_batch_size = model.eval_batch_size;
  return spec;
}

}  // namespace qs
