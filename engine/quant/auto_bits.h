// Mixed-precision search under an accuracy budget: every quantizable layer
// starts at the most aggressive candidate width; while the accuracy drop
// against fp32 exceeds the budget, the most sensitive layer that can still
// move is raised to the next width (after the widest: fp32). Sensitivity is
// each layer's own accuracy drop when it alone is quantized aggressively.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/quant/policy.h"

namespace qs::quant {

// Accuracy (0..1) of the model quantized by these layer plans.
using PlanEvaluator = std::function<absl::StatusOr<double>(const std::vector<LayerPlan>&)>;

struct AutoBitsResult {
  std::vector<LayerPlan> plans;
  double accuracy = 0;
  int evaluations = 0;
  bool met_budget = false;
  std::vector<std::string> steps;  // human-readable log of the search
};

// `screen` (e.g. a subset of the evaluation set) ranks layers and drives the
// search; a candidate that `screen` accepts is confirmed with `confirm`
// (the full set, against `fp32_confirm_accuracy`) before it is returned.
absl::StatusOr<AutoBitsResult> SearchBitWidths(const std::vector<LayerPlan>& base,
                                               const AutoBits& config, double fp32_accuracy,
                                               const PlanEvaluator& screen,
                                               double fp32_confirm_accuracy,
                                               const PlanEvaluator& confirm);

}  // namespace qs::quant
