// Shared pieces of the ai.onnx.ml kernels: post transforms, attributes that
// come as floats or (opset 3) as tensors, class labels, and input rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kernel.h"

namespace qs::ml {

enum class PostTransform { kNone, kSoftmax, kLogistic, kSoftmaxZero, kProbit };

absl::StatusOr<PostTransform> ReadPostTransform(const Node& node);
// Applies the transform to one row of `n` scores in place.
void ApplyPostTransform(PostTransform t, float* scores, int64_t n);
// The inverse of the standard normal CDF (PROBIT), sqrt(2)·erfinv(2p-1).
float Probit(float p);

// `name` as floats, or `name`_as_tensor (opset 3, any float type); empty
// when neither is set.
std::vector<float> FloatsAttr(const Node& node, const std::string& name);

// classlabels_ints / classlabels_int64s; string labels are refused (the
// engine's tensors carry no strings): Unimplemented naming the node.
absl::StatusOr<std::vector<int64_t>> IntClassLabels(const Node& node, const char* ints_name,
                                                    const char* strings_name);

// The [N, F] feature matrix of input 0 (rank 1 = one row), as float.
struct Rows {
  int64_t n = 0, features = 0;
};
absl::StatusOr<Rows> InputRows(const OpContext& c);
// Input 0 as float32 (a view if it already is, else a converted copy).
Tensor AsFloat(const Tensor& x);
// Unimplemented unless input 0 is float32/float64/int32/int64.
absl::Status RequireNumericInput(const OpContext& c);

// Label = argmax of each row of `scores` (first on ties) mapped through
// `labels`, written to `out` (int64 [N]).
void ArgmaxLabels(const float* scores, int64_t n, int64_t classes,
                  const std::vector<int64_t>& labels, int64_t* out);

// Two-class models that compute one score s per row write [-s, s]
// (or [1-s, s] when every weight is non-negative, i.e. s is a probability).
void ExpandBinaryScores(const float* single, int64_t n, bool probability, float* out);

}  // namespace qs::ml
