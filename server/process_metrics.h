// process_* metrics (CPU time, memory, open files, start time) read from
// Linux /proc/self at every scrape; prometheus-cpp 1.0 has no process
// collector of its own. Also the engine's activation buffer cache
// (quantserve_activation_cache_*), memory the process holds on purpose.
// Registered on the Exposer next to the registry.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace qs {

class ProcessCollector : public prometheus::Collectable {
 public:
  ProcessCollector();
  // Families whose /proc source cannot be read are left out.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  double start_time_seconds_ = 0;  // 0 when unknown
};

}  // namespace qs
