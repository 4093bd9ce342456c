#include "engine/onnx_tensor.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "onnx/onnx_pb.h"

namespace qs {

DataType DataTypeFromOnnx(int onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT: return DataType::kFloat32;
    case onnx::TensorProto::UINT8: return DataType::kUint8;
    case onnx::TensorProto::INT8: return DataType::kInt8;
    case onnx::TensorProto::INT32: return DataType::kInt32;
    case onnx::TensorProto::INT64: return DataType::kInt64;
    case onnx::TensorProto::BOOL: return DataType::kBool;
    case onnx::TensorProto::DOUBLE: return DataType::kFloat64;
    default: return DataType::kUndefined;
  }
}

namespace {

int OnnxTypeFrom(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return onnx::TensorProto::FLOAT;
    case DataType::kUint8: return onnx::TensorProto::UINT8;
    case DataType::kInt8: return onnx::TensorProto::INT8;
    case DataType::kInt32: return onnx::TensorProto::INT32;
    case DataType::kInt64: return onnx::TensorProto::INT64;
    case DataType::kBool: return onnx::TensorProto::BOOL;
    case DataType::kFloat64: return onnx::TensorProto::DOUBLE;
    case DataType::kUndefined: break;
  }
  return onnx::TensorProto::UNDEFINED;
}

// Copies a typed repeated field into the tensor, converting element type.
template <typename Dst, typename Field>
absl::Status CopyField(const Field& field, Tensor& t, const std::string& what) {
  if (static_cast<int64_t>(field.size()) != t.num_elements()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": holds ", field.size(), " values but its shape ",
        ShapeToString(t.shape()), " needs ", t.num_elements()));
  }
  Dst* out = t.data<Dst>();
  for (int i = 0; i < field.size(); ++i) out[i] = static_cast<Dst>(field.Get(i));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto,
                                       const std::string& what) {
  DataType dtype = DataTypeFromOnnx(proto.data_type());
  if (dtype == DataType::kUndefined) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": element type ", proto.data_type(),
        " is not supported (supported: float, double, uint8, int8, int32, "
        "int64, bool)"));
  }
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": external tensor data is not supported; save the model "
              "with its weights inside the .onnx file"));
  }
  Shape shape;
  // Guard the element count against overflow before allocating anything.
  constexpr int64_t kMaxElements = int64_t{1} << 34;
  int64_t count = 1;
  int64_t nonzero = 1;  // product of the non-zero dims: bounded too, as
                        // shape inference multiplies dims of empty tensors
  for (int64_t d : proto.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": negative dimension ", d));
    }
    if (d != 0 && nonzero > kMaxElements / d) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": dimensions are too large to allocate"));
    }
    count *= d;
    if (d != 0) nonzero *= d;
    shape.push_back(d);
  }
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    if (raw.size() != static_cast<size_t>(count) * DataTypeSize(dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": raw_data has ", raw.size(), " bytes but shape ",
          ShapeToString(shape), " of ", DataTypeName(dtype), " needs ",
          count * DataTypeSize(dtype)));
    }
    Tensor t(dtype, shape);
    CopyRawBytes(raw.data(), raw.size(), t);
    return t;
  }
  // Validate the field size before allocating the tensor.
  int64_t available = 0;
  switch (dtype) {
    case DataType::kFloat32: available = proto.float_data_size(); break;
    case DataType::kInt64: available = proto.int64_data_size(); break;
    case DataType::kFloat64: available = proto.double_data_size(); break;
    default: available = proto.int32_data_size(); break;
  }
  if (available != count) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": holds ", available, " values but its shape ",
        ShapeToString(shape), " needs ", count));
  }
  Tensor t(dtype, shape);
  switch (dtype) {
    case DataType::kFloat32: RETURN_IF_ERROR(CopyField<float>(proto.float_data(), t, what)); break;
    case DataType::kInt64: RETURN_IF_ERROR(CopyField<int64_t>(proto.int64_data(), t, what)); break;
    case DataType::kFloat64: RETURN_IF_ERROR(CopyField<double>(proto.double_data(), t, what)); break;
    case DataType::kInt32: RETURN_IF_ERROR(CopyField<int32_t>(proto.int32_data(), t, what)); break;
    case DataType::kUint8: RETURN_IF_ERROR(CopyField<uint8_t>(proto.int32_data(), t, what)); break;
    case DataType::kInt8: RETURN_IF_ERROR(CopyField<int8_t>(proto.int32_data(), t, what)); break;
    case DataType::kBool: RETURN_IF_ERROR(CopyField<bool>(proto.int32_data(), t, what)); break;
    case DataType::kUndefined: break;
  }
  return t;
}

onnx::TensorProto TensorToProto(const Tensor& tensor, const std::string& name) {
  onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(OnnxTypeFrom(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto.add_dims(d);
  proto.set_raw_data(tensor.raw_data(), tensor.byte_size());
  return proto;
}

absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  onnx::TensorProto proto;
  if (!proto.ParseFromString(buffer.str())) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not a serialized ONNX TensorProto"));
  }
  return TensorFromProto(proto, absl::StrCat("tensor file '", path, "'"));
}

}  // namespace qs
