#include "engine/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "engine/buffer_cache.h"

namespace qs {

size_t DataTypeSize(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return 4;
    case DataType::kUint8: return 1;
    case DataType::kInt8: return 1;
    case DataType::kInt32: return 4;
    case DataType::kInt64: return 8;
    case DataType::kBool: return 1;
    case DataType::kFloat64: return 8;
    case DataType::kUndefined: return 0;
  }
  return 0;
}

std::string DataTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return "float32";
    case DataType::kUint8: return "uint8";
    case DataType::kInt8: return "int8";
    case DataType::kInt32: return "int32";
    case DataType::kInt64: return "int64";
    case DataType::kBool: return "bool";
    case DataType::kFloat64: return "float64";
    case DataType::kUndefined: return "undefined";
  }
  return "undefined";
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += shape[i] < 0 ? "?" : std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    n *= d;
  }
  return n;
}

namespace {
std::shared_ptr<std::byte> AllocateZeroed(size_t bytes) {
  std::shared_ptr<std::byte> buffer = BufferCache::Global().Allocate(bytes);
  std::memset(buffer.get(), 0, bytes);
  return buffer;
}
}  // namespace

Tensor::Tensor(DataType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), num_elements_(NumElements(shape_)) {
  buffer_ = AllocateZeroed(byte_size());
}

Tensor Tensor::Uninitialized(DataType dtype, Shape shape, size_t bytes) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.num_elements_ = NumElements(t.shape_);
  t.buffer_ = BufferCache::Global().Allocate(std::max(bytes, t.byte_size()));
  return t;
}

Tensor Tensor::Reshaped(Shape new_shape) const {
  Tensor t = *this;
  t.shape_ = std::move(new_shape);
  t.num_elements_ = NumElements(t.shape_);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t(dtype_, shape_);
  if (byte_size() > 0) std::memcpy(t.raw_data(), raw_data(), byte_size());
  return t;
}

double Tensor::ScalarAsDouble(int64_t i) const {
  switch (dtype_) {
    case DataType::kFloat32: return data<float>()[i];
    case DataType::kUint8: return data<uint8_t>()[i];
    case DataType::kInt8: return data<int8_t>()[i];
    case DataType::kInt32: return data<int32_t>()[i];
    case DataType::kInt64: return static_cast<double>(data<int64_t>()[i]);
    case DataType::kBool: return data<bool>()[i] ? 1.0 : 0.0;
    case DataType::kFloat64: return data<double>()[i];
    case DataType::kUndefined: return 0.0;
  }
  return 0.0;
}

void CopyRawBytes(const void* src, size_t bytes, Tensor& t) {
  if (bytes == 0) return;
  if (t.dtype() != DataType::kBool) {
    std::memcpy(t.raw_data(), src, bytes);
    return;
  }
  const auto* in = static_cast<const unsigned char*>(src);
  auto* out = static_cast<unsigned char*>(t.raw_data());
  for (size_t i = 0; i < bytes; ++i) out[i] = in[i] != 0 ? 1 : 0;
}

int64_t SaturatingToInt64(double v) {
  if (std::isnan(v)) return 0;
  // 2^63 is exactly representable; every double below it converts safely.
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (v >= kTwoTo63) return std::numeric_limits<int64_t>::max();
  if (v < -kTwoTo63) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

int64_t Tensor::ScalarAsInt64(int64_t i) const {
  if (dtype_ == DataType::kInt64) return data<int64_t>()[i];
  return SaturatingToInt64(ScalarAsDouble(i));
}

}  // namespace qs
