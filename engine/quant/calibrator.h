// One streaming pass of the fp32 model over the calibration set that
// collects, for every quantizable layer's input: a histogram (for choosing
// activation ranges) and, where weight optimization needs them, a bounded
// number of input rows (im2col patches for Conv). Nothing else is kept:
// activations are never all in memory at once.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/compiled_model.h"
#include "engine/data/dataset.h"
#include "engine/quant/histogram.h"

namespace qs::quant {

struct LayerInputStats {
  ActivationHistogram histogram;
  Tensor rows;  // float32 [S, K] samples of the layer's input as a matrix product sees it
};

struct CalibrationOptions {
  int64_t batch_size = 64;
  int64_t max_rows = 4096;       // per layer, for weight optimization; 0 = none
  int64_t patches_per_sample = 8;  // Conv: random output positions per image
  uint32_t seed = 0;
  // false: every consumer calibrates by minmax, so layer histograms keep
  // only their extremes (a third of a minmax calibration's time is binning).
  bool histograms = true;
};

class CalibrationStats {
 public:
  // `fp32` must be compiled from the same graph the layers belong to.
  static absl::StatusOr<CalibrationStats> Collect(const CompiledModel& fp32, const Dataset& data,
                                                  const CalibrationOptions& options);

  // Stats of the input of the named quantizable layer, or nullptr.
  const LayerInputStats* ForLayer(const std::string& node) const;
  int64_t samples() const { return samples_; }

 private:
  std::map<std::string, LayerInputStats> by_layer_;
  int64_t samples_ = 0;
};

}  // namespace qs::quant
