#include "engine/quant/auto_bits.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "engine/status_macros.h"

namespace qs::quant {
namespace {

// Level of a layer: index into candidate_bits, or candidates.size() = fp32.
void ApplyLevel(LayerPlan& plan, const std::vector<int>& candidates, size_t level) {
  if (level >= candidates.size()) {
    plan.fp32 = true;
    return;
  }
  plan.fp32 = false;
  plan.weights.bits = candidates[level];
  if (candidates[level] == 1) {
    plan.weights.method = WeightMethod::kSign;
  } else if (plan.weights.method == WeightMethod::kSign) {
    plan.weights.method = WeightMethod::kLinear;
  }
}

}  // namespace

absl::StatusOr<AutoBitsResult> SearchBitWidths(const std::vector<LayerPlan>& base,
                                               const AutoBits& config, double fp32_accuracy,
                                               const PlanEvaluator& evaluate,
                                               double fp32_confirm_accuracy,
                                               const PlanEvaluator& confirm) {
  const std::vector<int>& cands = config.candidate_bits;
  if (cands.empty()) return absl::InvalidArgumentError("auto: no candidate bit widths");
  AutoBitsResult r;
  const double budget = config.max_accuracy_drop / 100.0;  // points -> fraction
  std::vector<size_t> level(base.size(), 0);
  auto plans_at = [&](const std::vector<size_t>& lv) {
    std::vector<LayerPlan> plans = base;
    for (size_t i = 0; i < plans.size(); ++i) {
      if (!base[i].fp32) ApplyLevel(plans[i], cands, lv[i]);
    }
    return plans;
  };
  // Sensitivity: each layer alone at the most aggressive width.
  std::vector<std::pair<double, size_t>> sensitivity;
  for (size_t i = 0; i < base.size(); ++i) {
    if (base[i].fp32) continue;
    std::vector<size_t> lv(base.size(), cands.size());
    lv[i] = 0;
    ASSIGN_OR_RETURN(double acc, evaluate(plans_at(lv)));
    ++r.evaluations;
    sensitivity.push_back({fp32_accuracy - acc, i});
    r.steps.push_back(absl::StrFormat("sensitivity %s at %d bits: drop %.2f points",
                                      base[i].node, cands[0], 100 * (fp32_accuracy - acc)));
  }
  std::stable_sort(sensitivity.begin(), sensitivity.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  while (true) {
    std::vector<LayerPlan> plans = plans_at(level);
    ASSIGN_OR_RETURN(double acc, evaluate(plans));
    ++r.evaluations;
    r.plans = plans;
    r.accuracy = acc;
    const double drop = fp32_accuracy - acc;
    std::string widths;
    for (const auto& p : plans) {
      widths += absl::StrFormat("%s%s=%s", widths.empty() ? "" : " ", p.node,
                                p.fp32 ? "fp32" : std::to_string(p.weights.bits));
    }
    r.steps.push_back(absl::StrFormat("try %s: drop %.2f points", widths, 100 * drop));
    if (drop <= budget) {
      ASSIGN_OR_RETURN(double full, confirm(plans));
      ++r.evaluations;
      const double full_drop = fp32_confirm_accuracy - full;
      r.steps.push_back(absl::StrFormat("confirm on the full set: drop %.2f points", 100 * full_drop));
      if (full_drop <= budget) {
        r.accuracy = full;
        r.met_budget = true;
        return r;
      }
    }
    // Raise one layer by one step: among the layers at the lowest level,
    // the most sensitive. So every layer reaches the next width (most
    // sensitive first) before any goes further, which keeps bytes low.
    size_t lowest = cands.size();
    for (const auto& [s, i] : sensitivity) lowest = std::min(lowest, level[i]);
    if (lowest >= cands.size()) return r;  // everything is fp32, still over budget
    for (const auto& [s, i] : sensitivity) {
      if (level[i] == lowest) {
        ++level[i];
        break;
      }
    }
  }
}

}  // namespace qs::quant
