// Reports a DriftMonitor's findings as Prometheus metrics (the drift series
// of server/metric_names.h) and logs failed replays.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "server/drift_monitor.h"
#include "server/metrics.h"

namespace qs {

class DriftMetricsObserver : public DriftObserver {
 public:
  // `variants` in the model's order (entries may be null: no metrics).
  DriftMetricsObserver(std::string model, std::vector<std::string> variant_names,
                       std::vector<std::shared_ptr<VariantMetrics>> variants,
                       std::shared_ptr<ModelMetrics> model_metrics);

  void Compared(int variant, const std::vector<SampleComparison>& samples) override;
  void ReplayFailed(int variant, const absl::Status& status) override;
  void Enqueued(int served_variant) override;
  void Dropped(int served_variant) override;
  void QueueLength(size_t length) override;

 private:
  VariantMetrics* At(int variant) const;

  const std::string model_;
  const std::vector<std::string> variant_names_;
  const std::vector<std::shared_ptr<VariantMetrics>> variants_;
  const std::shared_ptr<ModelMetrics> model_metrics_;
  std::atomic<uint64_t> failures_{0};
};

}  // namespace qs
