#include "server/tensor_codec.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace qs {

namespace v1 = quantserve::v1;

v1::DataType ToWireType(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return v1::FP32;
    case DataType::kInt64: return v1::INT64;
    case DataType::kInt32: return v1::INT32;
    case DataType::kUint8: return v1::UINT8;
    case DataType::kInt8: return v1::INT8;
    case DataType::kFloat64: return v1::FP64;
    case DataType::kBool: return v1::BOOL;
    case DataType::kUndefined: break;
  }
  return v1::DATA_TYPE_UNSPECIFIED;
}

DataType FromWireType(v1::DataType dtype) {
  switch (dtype) {
    case v1::FP32: return DataType::kFloat32;
    case v1::INT64: return DataType::kInt64;
    case v1::INT32: return DataType::kInt32;
    case v1::UINT8: return DataType::kUint8;
    case v1::INT8: return DataType::kInt8;
    case v1::FP64: return DataType::kFloat64;
    case v1::BOOL: return DataType::kBool;
    default: return DataType::kUndefined;
  }
}

namespace {

// Number of values present in the typed field matching `dtype`.
int TypedCount(const v1::Tensor& w, DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return w.float_data_size();
    case DataType::kInt64: return w.int64_data_size();
    case DataType::kFloat64: return w.double_data_size();
    default: return w.int32_data_size();
  }
}

int AllTypedCount(const v1::Tensor& w) {
  return w.float_data_size() + w.int64_data_size() + w.double_data_size() +
         w.int32_data_size();
}

}  // namespace

absl::StatusOr<Tensor> DecodeTensor(const v1::Tensor& w, const std::string& field,
                                    const DecodeLimits& limits) {
  const DataType dtype = FromWireType(w.datatype());
  if (dtype == DataType::kUndefined) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".datatype: ", v1::DataType_Name(w.datatype()),
        " is not a supported datatype (FP32, INT64, INT32, UINT8, INT8, FP64, BOOL)"));
  }
  Shape shape(w.shape().begin(), w.shape().end());
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".shape[", i, "]: negative dimension ", shape[i]));
    }
    if (shape[i] != 0 && count > limits.max_elements / shape[i]) {
      return absl::ResourceExhaustedError(absl::StrCat(
          field, ".shape: ", ShapeToString(shape), " exceeds the limit of ",
          limits.max_elements, " elements per tensor"));
    }
    count *= shape[i];
  }
  if (count > limits.max_elements) {
    return absl::ResourceExhaustedError(absl::StrCat(
        field, ".shape: ", ShapeToString(shape), " exceeds the limit of ",
        limits.max_elements, " elements per tensor"));
  }
  const bool has_raw = !w.raw_data().empty();
  const int typed_any = AllTypedCount(w);
  if (has_raw && typed_any > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": data is given both as raw_data and in typed fields; use one"));
  }
  if (has_raw) {
    const size_t want = static_cast<size_t>(count) * DataTypeSize(dtype);
    if (w.raw_data().size() != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".raw_data: ", w.raw_data().size(), " bytes, but shape ",
          ShapeToString(shape), " of ", DataTypeName(dtype), " needs ", want));
    }
    Tensor t(dtype, shape);
    CopyRawBytes(w.raw_data().data(), want, t);
    RETURN_IF_ERROR(CheckDecodedTensor(t, field, limits));
    return t;
  }
  const int typed = TypedCount(w, dtype);
  if (typed != typed_any) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": values are in a field that does not match datatype ",
        v1::DataType_Name(w.datatype())));
  }
  if (typed != count) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", typed, " values given, but shape ", ShapeToString(shape),
        " needs ", count));
  }
  Tensor t(dtype, shape);
  // count == 0: an empty repeated field's data() may be null, and memcpy
  // from null is undefined even for 0 bytes.
  switch (count > 0 ? dtype : DataType::kUndefined) {
    case DataType::kFloat32:
      std::memcpy(t.raw_data(), w.float_data().data(), count * sizeof(float));
      break;
    case DataType::kInt64:
      std::memcpy(t.raw_data(), w.int64_data().data(), count * sizeof(int64_t));
      break;
    case DataType::kFloat64:
      std::memcpy(t.raw_data(), w.double_data().data(), count * sizeof(double));
      break;
    case DataType::kInt32:
      std::memcpy(t.raw_data(), w.int32_data().data(), count * sizeof(int32_t));
      break;
    case DataType::kUint8:
      for (int64_t i = 0; i < count; ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(w.int32_data(i));
      break;
    case DataType::kInt8:
      for (int64_t i = 0; i < count; ++i) t.data<int8_t>()[i] = static_cast<int8_t>(w.int32_data(i));
      break;
    case DataType::kBool:
      for (int64_t i = 0; i < count; ++i) t.data<bool>()[i] = w.int32_data(i) != 0;
      break;
    case DataType::kUndefined: break;
  }
  RETURN_IF_ERROR(CheckDecodedTensor(t, field, limits));
  return t;
}

absl::Status CheckDecodedTensor(const Tensor& t, const std::string& field,
                                const DecodeLimits& limits) {
  if (t.rank() > 0 && t.shape()[0] > limits.max_batch_rows) {
    return absl::ResourceExhaustedError(absl::StrCat(
        field, ".shape[0]: ", t.shape()[0], " rows exceed the limit of ", limits.max_batch_rows));
  }
  if (limits.reject_nonfinite && t.dtype() == DataType::kFloat32) {
    const float* v = t.data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      if (!std::isfinite(v[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ": element ", i, " is ", v[i],
            "; NaN and Inf inputs are rejected (server.nan_policy: reject)"));
      }
    }
  }
  return absl::OkStatus();
}

void EncodeTensor(const Tensor& t, const std::string& name, bool raw, v1::Tensor* w) {
  w->set_name(name);
  w->set_datatype(ToWireType(t.dtype()));
  for (int64_t d : t.shape()) w->add_shape(d);
  if (raw) {
    w->set_raw_data(t.raw_data(), t.byte_size());
    return;
  }
  const int64_t n = t.num_elements();
  switch (t.dtype()) {
    case DataType::kFloat32:
      w->mutable_float_data()->Add(t.data<float>(), t.data<float>() + n);
      break;
    case DataType::kInt64:
      w->mutable_int64_data()->Add(t.data<int64_t>(), t.data<int64_t>() + n);
      break;
    case DataType::kFloat64:
      w->mutable_double_data()->Add(t.data<double>(), t.data<double>() + n);
      break;
    default:
      for (int64_t i = 0; i < n; ++i) w->add_int32_data(static_cast<int32_t>(t.ScalarAsInt64(i)));
      break;
  }
}

}  // namespace qs
