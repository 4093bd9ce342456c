// Random model inputs for speed measurements (`quantserve bench`,
// bench/engine_bench): the graph inputs with their batch dimension set, and
// a random calibration set for quantized variants when no real data is at
// hand (speed is then representative, accuracy is not).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/tensor.h"

namespace qs {

// One tensor per entry of `inputs` with every dynamic dimension 0 set to
// `batch`: floats uniform in [0, 1), integers 0 (a valid index for any
// Gather). A dynamic dimension other than the first is an error.
absl::StatusOr<std::vector<Tensor>> RandomInputs(const std::vector<ValueInfo>& inputs,
                                                 int64_t batch, uint32_t seed);

// Batches for the single input of a model from the rows of a .npy file (its
// first dimension indexes samples; the rest must equal the input's
// non-batch dimensions): speed on real data, for models whose cost depends
// on the values (tree ensembles take a data-dependent path). Batch k holds
// rows k·batch, k·batch+1, … (cyclically); there are enough batches to use
// every row once, at most `max_batches`, so that consecutive runs see
// different rows as a server's would (one repeated row would let the branch
// predictor learn its path). float64 files are converted to float32.
absl::StatusOr<std::vector<std::vector<Tensor>>> BatchesFromNpy(
    const std::vector<ValueInfo>& inputs, const std::string& npy_path, int64_t batch,
    int64_t max_batches = 64);

// Imports the single-input model at `model_path`, draws `samples` random
// inputs for it and writes them to a new .npy file in the temporary
// directory; returns its path (the caller removes it).
absl::StatusOr<std::string> WriteRandomCalibrationNpy(const std::string& model_path,
                                                      int64_t samples, uint32_t seed);

}  // namespace qs
