#include "server/drift_metrics.h"

#include <spdlog/spdlog.h>

#include <cmath>

namespace qs {

DriftMetricsObserver::DriftMetricsObserver(std::string model,
                                           std::vector<std::string> variant_names,
                                           std::vector<std::shared_ptr<VariantMetrics>> variants,
                                           std::shared_ptr<ModelMetrics> model_metrics)
    : model_(std::move(model)),
      variant_names_(std::move(variant_names)),
      variants_(std::move(variants)),
      model_metrics_(std::move(model_metrics)) {}

VariantMetrics* DriftMetricsObserver::At(int variant) const {
  return variant >= 0 && variant < static_cast<int>(variants_.size()) ? variants_[variant].get()
                                                                       : nullptr;
}

void DriftMetricsObserver::Compared(int variant, const std::vector<SampleComparison>& samples) {
  VariantMetrics* m = At(variant);
  if (m == nullptr || m->drift_samples == nullptr) return;
  double agreements = 0;
  for (const SampleComparison& s : samples) {
    if (s.top1 == s.reference_top1) ++agreements;
    // A non-finite value (NaN inputs let through by nan_policy: allow) would
    // poison the histogram's _sum for good; the sample still counts.
    if (std::isfinite(s.kl_divergence)) m->drift_kl->Observe(s.kl_divergence);
    if (std::isfinite(s.relative_error)) m->drift_relative_error->Observe(s.relative_error);
  }
  m->drift_samples->Increment(static_cast<double>(samples.size()));
  m->drift_agreements->Increment(agreements);
}

void DriftMetricsObserver::ReplayFailed(int variant, const absl::Status& status) {
  VariantMetrics* m = At(variant);
  if (m != nullptr && m->drift_errors != nullptr) m->drift_errors->Increment();
  // Log the 1st, 2nd, 4th, 8th... failure: visible, but never a flood.
  const uint64_t n = ++failures_;
  if ((n & (n - 1)) == 0) {
    const std::string name = variant >= 0 && variant < static_cast<int>(variant_names_.size())
                                 ? variant_names_[variant]
                                 : "?";
    spdlog::warn("drift replay failed for model {} variant {} ({} failures so far): {}", model_,
                 name, n, status.ToString());
  }
}

void DriftMetricsObserver::Enqueued(int served_variant) {
  VariantMetrics* m = At(served_variant);
  if (m != nullptr && m->drift_enqueued != nullptr) m->drift_enqueued->Increment();
}

void DriftMetricsObserver::Dropped(int served_variant) {
  VariantMetrics* m = At(served_variant);
  if (m != nullptr && m->drift_dropped != nullptr) m->drift_dropped->Increment();
}

void DriftMetricsObserver::QueueLength(size_t length) {
  if (model_metrics_ && model_metrics_->drift_queue_length) {
    model_metrics_->drift_queue_length->Set(static_cast<double>(length));
  }
}

}  // namespace qs
