// Conversion between wire tensors (quantserve.v1.Tensor) and engine tensors,
// with validation that names the offending field.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/tensor.h"
#include "quantserve/v1/inference.pb.h"

namespace qs {

struct DecodeLimits {
  int64_t max_elements = int64_t{1} << 26;  // per tensor
  int64_t max_batch_rows = 4096;            // first dimension of an input
  bool reject_nonfinite = true;             // NaN / Inf in float inputs
};

// Limits that need the decoded values: batch rows (RESOURCE_EXHAUSTED) and
// the NaN/Inf policy (INVALID_ARGUMENT naming the element).
absl::Status CheckDecodedTensor(const Tensor& t, const std::string& field,
                                const DecodeLimits& limits);

// `field` names the tensor in errors, e.g. "inputs[0] ('input')".
absl::StatusOr<Tensor> DecodeTensor(const quantserve::v1::Tensor& wire,
                                    const std::string& field, const DecodeLimits& limits);
void EncodeTensor(const Tensor& tensor, const std::string& name, bool raw,
                  quantserve::v1::Tensor* wire);

quantserve::v1::DataType ToWireType(DataType dtype);
DataType FromWireType(quantserve::v1::DataType dtype);

}  // namespace qs
