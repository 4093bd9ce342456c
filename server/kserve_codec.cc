#include "server/kserve_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace qs {

namespace {

using InferInputTensor = inference::ModelInferRequest::InferInputTensor;

constexpr const char* kSupported = "FP32, INT64, INT32, UINT8, INT8, FP64, BOOL";

// Values in the contents field that matches `dtype`.
int MatchingCount(const inference::InferTensorContents& c, DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return c.fp32_contents_size();
    case DataType::kInt64: return c.int64_contents_size();
    case DataType::kFloat64: return c.fp64_contents_size();
    case DataType::kInt32:
    case DataType::kInt8: return c.int_contents_size();
    case DataType::kUint8: return c.uint_contents_size();
    case DataType::kBool: return c.bool_contents_size();
    case DataType::kUndefined: break;
  }
  return 0;
}

int AllCount(const inference::InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() +
         c.uint_contents_size() + c.uint64_contents_size() + c.fp32_contents_size() +
         c.fp64_contents_size() + c.bytes_contents_size();
}

absl::Status OutOfRange(const std::string& field, const char* contents, int64_t i,
                        int64_t value, const std::string& datatype) {
  return absl::InvalidArgumentError(absl::StrCat(field, ".contents.", contents, "[", i,
                                                 "]: ", value, " is out of range for ",
                                                 datatype));
}

// Copies typed contents (count already checked) into `t`.
absl::Status FillTyped(const inference::InferTensorContents& c, const std::string& field,
                       const std::string& datatype, Tensor& t) {
  const int64_t n = t.num_elements();
  switch (t.dtype()) {
    case DataType::kFloat32:
      std::memcpy(t.raw_data(), c.fp32_contents().data(), n * sizeof(float));
      break;
    case DataType::kInt64:
      std::memcpy(t.raw_data(), c.int64_contents().data(), n * sizeof(int64_t));
      break;
    case DataType::kFloat64:
      std::memcpy(t.raw_data(), c.fp64_contents().data(), n * sizeof(double));
      break;
    case DataType::kInt32:
      std::memcpy(t.raw_data(), c.int_contents().data(), n * sizeof(int32_t));
      break;
    case DataType::kInt8:
      for (int64_t i = 0; i < n; ++i) {
        const int32_t v = c.int_contents(i);
        if (v < -128 || v > 127) return OutOfRange(field, "int_contents", i, v, datatype);
        t.data<int8_t>()[i] = static_cast<int8_t>(v);
      }
      break;
    case DataType::kUint8:
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t v = c.uint_contents(i);
        if (v > 255) return OutOfRange(field, "uint_contents", i, v, datatype);
        t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
      }
      break;
    case DataType::kBool:
      for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = c.bool_contents(i);
      break;
    case DataType::kUndefined: break;
  }
  return absl::OkStatus();
}

}  // namespace

DataType FromKServeDatatype(const std::string& s) {
  if (s == "FP32") return DataType::kFloat32;
  if (s == "INT64") return DataType::kInt64;
  if (s == "INT32") return DataType::kInt32;
  if (s == "UINT8") return DataType::kUint8;
  if (s == "INT8") return DataType::kInt8;
  if (s == "FP64") return DataType::kFloat64;
  if (s == "BOOL") return DataType::kBool;
  return DataType::kUndefined;
}

std::string ToKServeDatatype(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return "FP32";
    case DataType::kInt64: return "INT64";
    case DataType::kInt32: return "INT32";
    case DataType::kUint8: return "UINT8";
    case DataType::kInt8: return "INT8";
    case DataType::kFloat64: return "FP64";
    case DataType::kBool: return "BOOL";
    case DataType::kUndefined: break;
  }
  return "";
}

absl::StatusOr<Tensor> DecodeKServeInput(const InferInputTensor& in, const std::string* raw,
                                         const std::string& field,
                                         const std::string& raw_field,
                                         const DecodeLimits& limits) {
  const DataType dtype = FromKServeDatatype(in.datatype());
  if (dtype == DataType::kUndefined) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".datatype: '", in.datatype(),
                                                   "' is not a supported datatype (",
                                                   kSupported, ")"));
  }
  Shape shape(in.shape().begin(), in.shape().end());
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".shape[", i, "]: negative dimension ", shape[i]));
    }
  }
  int64_t count = 1;  // -1: more than the limit (without overflowing)
  for (int64_t d : shape) {
    if (d == 0) count = 0;
    if (count <= 0) continue;
    count = count > limits.max_elements / d ? -1 : count * d;
  }
  if (count < 0 || count > limits.max_elements) {
    return absl::ResourceExhaustedError(absl::StrCat(field, ".shape: ", ShapeToString(shape),
                                                     " exceeds the limit of ",
                                                     limits.max_elements,
                                                     " elements per tensor"));
  }
  const int typed_any = in.has_contents() ? AllCount(in.contents()) : 0;
  if (raw != nullptr) {
    if (typed_any > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": data is given both in contents and in ", raw_field, "; use one"));
    }
    const size_t want = static_cast<size_t>(count) * DataTypeSize(dtype);
    if (raw->size() != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": ", raw_field, " has ", raw->size(), " bytes, but shape ",
          ShapeToString(shape), " of ", in.datatype(), " needs ", want));
    }
    Tensor t(dtype, shape);
    CopyRawBytes(raw->data(), want, t);
    RETURN_IF_ERROR(CheckDecodedTensor(t, field, limits));
    return t;
  }
  const int typed = in.has_contents() ? MatchingCount(in.contents(), dtype) : 0;
  if (typed != typed_any) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": values are in a contents field that does not match datatype ",
        in.datatype()));
  }
  if (typed != count) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", typed,
                                                   " values given, but shape ",
                                                   ShapeToString(shape), " needs ", count));
  }
  Tensor t(dtype, shape);
  if (count > 0) {
    absl::Status s = FillTyped(in.contents(), field, in.datatype(), t);
    if (!s.ok()) return s;
  }
  RETURN_IF_ERROR(CheckDecodedTensor(t, field, limits));
  return t;
}

void EncodeKServeOutput(const Tensor& t, const std::string& name,
                        inference::ModelInferResponse::InferOutputTensor* out,
                        std::string* raw) {
  out->set_name(name);
  out->set_datatype(ToKServeDatatype(t.dtype()));
  for (int64_t d : t.shape()) out->add_shape(d);
  if (raw != nullptr) {
    raw->assign(static_cast<const char*>(t.raw_data()), t.byte_size());
    return;
  }
  const int64_t n = t.num_elements();
  inference::InferTensorContents* c = out->mutable_contents();
  switch (t.dtype()) {
    case DataType::kFloat32:
      c->mutable_fp32_contents()->Add(t.data<float>(), t.data<float>() + n);
      break;
    case DataType::kInt64:
      c->mutable_int64_contents()->Add(t.data<int64_t>(), t.data<int64_t>() + n);
      break;
    case DataType::kFloat64:
      c->mutable_fp64_contents()->Add(t.data<double>(), t.data<double>() + n);
      break;
    case DataType::kInt32:
      c->mutable_int_contents()->Add(t.data<int32_t>(), t.data<int32_t>() + n);
      break;
    case DataType::kInt8:
      for (int64_t i = 0; i < n; ++i) c->add_int_contents(t.data<int8_t>()[i]);
      break;
    case DataType::kUint8:
      for (int64_t i = 0; i < n; ++i) c->add_uint_contents(t.data<uint8_t>()[i]);
      break;
    case DataType::kBool:
      for (int64_t i = 0; i < n; ++i) c->add_bool_contents(t.data<bool>()[i]);
      break;
    case DataType::kUndefined: break;
  }
}

}  // namespace qs
