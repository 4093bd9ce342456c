// From a model file to servable variants: import the float ONNX model once,
// build each configured variant from it (fp32 today; quantized variants come
// from the quantization policy), compile, and evaluate every variant on the
// model's evaluation set, including top-1 agreement with the fp32 variant.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/compiled_model.h"
#include "engine/data/dataset.h"
#include "engine/quant/policy.h"
#include "engine/quant/quantize_graph.h"

namespace qs {

struct VariantSpec {
  std::string name;
  // Absent: the fp32 model. Present: quantized by this policy.
  std::optional<quant::QuantPolicy> policy;
};

struct ModelSpec {
  std::string name;
  std::string path;  // .onnx
  std::vector<VariantSpec> variants;
  std::optional<DatasetSpec> evaluation;
  std::optional<DatasetSpec> calibration;  // required by quantized variants
  int64_t eval_batch_size = 64;
  CompileOptions compile;
  // Called with one line per build step (load, calibrate, quantize,
  // compile, evaluate) and its duration.
  std::function<void(const std::string&)> progress;
};

// What `quantserve report` prints and GetModelMetadata returns per variant.
struct VariantReport {
  std::string name;
  int weight_bits = 32;
  int activation_bits = 32;
  std::string method = "fp32";
  int64_t weight_bytes = 0;
  bool evaluated = false;
  int64_t eval_samples = 0;
  double accuracy = 0.0;        // 0..1
  double top1_agreement = 1.0;  // with the fp32 variant, 0..1
  double build_seconds = 0.0;   // quantize + compile
  double eval_seconds = 0.0;
  std::vector<quant::LayerReport> layers;  // quantizable layers (empty for fp32)
  std::vector<std::string> auto_steps;     // the mixed-precision search, if any
};

struct BuiltVariant {
  VariantReport report;
  std::shared_ptr<const CompiledModel> model;
};

struct BuiltModel {
  std::string name;
  std::vector<BuiltVariant> variants;
  const BuiltVariant* Find(const std::string& variant) const;
};

// Errors name the model (and variant) they concern.
absl::StatusOr<BuiltModel> BuildModel(const ModelSpec& spec);

}  // namespace qs
