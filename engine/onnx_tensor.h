// Conversion between ONNX TensorProto and qs::Tensor. Used by the model
// importer (initializers, Constant nodes) and by data readers (.pb files of
// ONNX's conformance tests and of users' inputs).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace onnx {
class TensorProto;
}

namespace qs {

// Maps an ONNX TensorProto_DataType to ours; kUndefined if unsupported.
DataType DataTypeFromOnnx(int onnx_type);

// `what` names the tensor in error messages (e.g. "initializer 'conv1.w'").
absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto,
                                       const std::string& what);
onnx::TensorProto TensorToProto(const Tensor& tensor, const std::string& name);

// Reads a serialized TensorProto file (the `input_0.pb` of ONNX tests).
absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path);

}  // namespace qs
