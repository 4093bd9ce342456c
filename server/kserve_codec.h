// Conversion between KServe v2 tensors (inference.ModelInferRequest inputs,
// ModelInferResponse outputs) and engine tensors, with validation that names
// the offending field. Datatypes are KServe strings ("FP32", "INT64", ...).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/tensor.h"
#include "inference/grpc_predict_v2.pb.h"
#include "server/tensor_codec.h"

namespace qs {

// kUndefined for a string quantserve does not serve (e.g. "FP16", "BYTES").
DataType FromKServeDatatype(const std::string& datatype);
// "" for kUndefined.
std::string ToKServeDatatype(DataType dtype);

// `field` names the input in errors, e.g. "inputs[0] ('input')". `raw` is the
// input's raw_input_contents entry (`raw_field` names it), or nullptr when
// the request carries typed contents.
absl::StatusOr<Tensor> DecodeKServeInput(
    const inference::ModelInferRequest::InferInputTensor& input, const std::string* raw,
    const std::string& field, const std::string& raw_field, const DecodeLimits& limits);

// Fills name/datatype/shape, and the values either into `raw` (when not
// null; little-endian bytes) or into out->contents.
void EncodeKServeOutput(const Tensor& tensor, const std::string& name,
                        inference::ModelInferResponse::InferOutputTensor* out,
                        std::string* raw);

}  // namespace qs
