// Labeled datasets for accuracy evaluation and calibration, loaded from
// IDX(.gz) or .npy files and converted to float32 model inputs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace qs {

struct DatasetSpec {
  enum class Format { kIdx, kNpy };
  Format format = Format::kIdx;
  std::string inputs;  // IDX(.gz) of uint8 images, or .npy of any numeric dtype
  // Multi-input models: one .npy per model input (by name), used as stored
  // (its dtype, no scale/offset), all with the same number of samples.
  // When set, `inputs` and `labels` are unused.
  std::vector<std::pair<std::string, std::string>> named_inputs;
  std::string labels;  // IDX(.gz) or .npy of integer labels; empty = unlabeled
  // float_input = raw * scale + offset; applied to IDX and non-float npy
  // inputs, and to float npy inputs only when apply_scale_to_float is set.
  float scale = 1.0f / 255.0f;
  float offset = 0.0f;
  bool apply_scale_to_float = false;
  int64_t limit = 0;  // 0 = all samples; else the first `limit`
};

struct Dataset {
  Tensor inputs;  // float32, [N, sample dims...]
  Tensor labels;  // int64 [N], or empty when unlabeled
  // Multi-input datasets (DatasetSpec::named_inputs): each [N, ...] as
  // stored; `inputs` is then empty.
  std::vector<std::pair<std::string, Tensor>> named;

  int64_t size() const;
  // Rows [begin, begin+count) as a new float32 tensor [count, sample dims...]
  // (a copy). The range is clamped to [0, size()).
  Tensor Batch(int64_t begin, int64_t count) const;
  // The same rows of every named input.
  std::vector<std::pair<std::string, Tensor>> NamedBatch(int64_t begin, int64_t count) const;
};

// sample_shape: the model input's shape without the batch dim, e.g.
// {1,28,28}. The file's per-sample element count must equal its product and
// the data are reshaped to [N, sample_shape...]; an empty sample_shape keeps
// the file's own per-sample shape.
absl::StatusOr<Dataset> LoadDataset(const DatasetSpec& spec,
                                    const Shape& sample_shape);

}  // namespace qs
