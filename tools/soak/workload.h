// The requests quantserve-soak sends and the checks of their answers: valid
// Predict / ModelInfer requests carrying real Fashion-MNIST test images, the
// garbage kinds, and the reference logits every valid answer is compared with.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "inference/grpc_predict_v2.pb.h"
#include "quantserve/v1/inference.pb.h"
#include "tools/soak/soak_options.h"

namespace qs::soak {

namespace v1 = quantserve::v1;
using Rng = std::mt19937_64;

// What the server reports about the soaked model (GetModelMetadata).
struct ModelInfo {
  std::string model;
  std::string input_name;
  std::string output_name;
  Shape sample_shape;  // the input's shape without the batch dimension
  int64_t classes = 0;  // the output's second dimension
  std::vector<std::string> variants;  // soaked variants
};

// How the answer to a valid request must look.
struct Expectation {
  int variant = 0;
  int first = 0;  // first image of the pool
  int rows = 0;
};

class Workload {
 public:
  Workload(ModelInfo info, Dataset images, const Options& options);

  const ModelInfo& info() const { return info_; }
  int images() const { return static_cast<int>(images_.size()); }

  // A valid request for `e.rows` images starting at `e.first`.
  Expectation RandomExpectation(int variant, Rng& rng) const;
  void FillPredict(const Expectation& e, v1::PredictRequest* req) const;
  void FillModelInfer(const Expectation& e, inference::ModelInferRequest* req) const;

  // Garbage: kind `k` on the given API; RandomBytes for the generic stub.
  void FillGarbagePredict(GarbageKind k, int variant, Rng& rng, v1::PredictRequest* req) const;
  void FillGarbageModelInfer(GarbageKind k, int variant, Rng& rng,
                             inference::ModelInferRequest* req) const;
  static std::string RandomBytes(Rng& rng);
  // Kinds that exist only on KServe.
  static bool KServeOnly(GarbageKind k) { return k == GarbageKind::kRawCountMismatch; }

  // "" when the answer is right; else what is wrong. `max_diff` is raised to
  // the largest |logit - reference| seen.
  std::string CheckPredict(const v1::PredictResponse& resp, const Expectation& e,
                           double* max_diff) const;
  std::string CheckModelInfer(const inference::ModelInferResponse& resp, const Expectation& e,
                              double* max_diff) const;

  // An OK answer to a kEmptyBatch request: one output with zero rows.
  std::string CheckEmptyPredict(const v1::PredictResponse& resp) const;
  std::string CheckEmptyModelInfer(const inference::ModelInferResponse& resp) const;

  // References: the logits variant `v` answered for every pool image, taken
  // before the load starts (SetReference is called once per variant).
  void SetReference(int variant, std::vector<float> logits);
  int64_t sample_elements() const { return sample_elements_; }

 private:
  std::string CheckLogits(const float* logits, int64_t rows, const Expectation& e,
                          double* max_diff) const;
  std::string ImageBytes(int first, int rows) const;  // FP32 little-endian

  ModelInfo info_;
  Dataset images_;
  Options options_;
  int64_t sample_elements_ = 0;
  std::vector<std::vector<float>> references_;  // [variant][image * classes]
};

// Row-wise argmax of `rows` x `classes` logits.
std::vector<int> ArgMax(const float* logits, int64_t rows, int64_t classes);

}  // namespace qs::soak
