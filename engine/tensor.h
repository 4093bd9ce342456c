// A dense, row-major tensor with shared, 64-byte aligned storage.
//
// Copies share the buffer (like a shared_ptr); that is how reshape-like ops
// alias their input without copying. Kernels never write into their inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace qs {

enum class DataType : int {
  kUndefined = 0,
  kFloat32,
  kUint8,
  kInt8,
  kInt32,
  kInt64,
  kBool,
  kFloat64,
};

using Shape = std::vector<int64_t>;

// Size in bytes of one element; 0 for kUndefined.
size_t DataTypeSize(DataType dtype);
std::string DataTypeName(DataType dtype);
std::string ShapeToString(const Shape& shape);
// Product of dims; -1 if any dim is negative (unknown).
int64_t NumElements(const Shape& shape);

template <typename T> constexpr DataType DataTypeOf();
template <> constexpr DataType DataTypeOf<float>() { return DataType::kFloat32; }
template <> constexpr DataType DataTypeOf<uint8_t>() { return DataType::kUint8; }
template <> constexpr DataType DataTypeOf<int8_t>() { return DataType::kInt8; }
template <> constexpr DataType DataTypeOf<int32_t>() { return DataType::kInt32; }
template <> constexpr DataType DataTypeOf<int64_t>() { return DataType::kInt64; }
template <> constexpr DataType DataTypeOf<bool>() { return DataType::kBool; }
template <> constexpr DataType DataTypeOf<double>() { return DataType::kFloat64; }

class Tensor {
 public:
  Tensor() = default;
  // Allocates a zero-filled tensor. Callers check sizes before allocating
  // (see CompileOptions::max_tensor_bytes); this constructor trusts them.
  Tensor(DataType dtype, Shape shape);

  // A zero-filled tensor whose buffer holds `bytes` (at least its logical
  // size): for values kept in a padded oneDNN layout (see
  // OpContext::out_layout_free). byte_size() stays the logical size.
  static Tensor WithBuffer(DataType dtype, Shape shape, size_t bytes);

  template <typename T>
  static Tensor FromVector(Shape shape, const std::vector<T>& values) {
    Tensor t(DataTypeOf<T>(), std::move(shape));
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }

  DataType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t num_elements() const { return num_elements_; }
  size_t byte_size() const { return num_elements_ * DataTypeSize(dtype_); }
  bool empty() const { return dtype_ == DataType::kUndefined; }

  void* raw_data() { return buffer_.get(); }
  const void* raw_data() const { return buffer_.get(); }
  template <typename T> T* data() { return static_cast<T*>(raw_data()); }
  template <typename T> const T* data() const {
    return static_cast<const T*>(raw_data());
  }
  template <typename T> std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(num_elements_)};
  }

  // Same buffer, new shape with the same element count.
  Tensor Reshaped(Shape new_shape) const;
  // A deep copy that owns its own buffer.
  Tensor Clone() const;
  // Element i converted to double / int64 (for small constant tensors).
  double ScalarAsDouble(int64_t i = 0) const;
  int64_t ScalarAsInt64(int64_t i = 0) const;

 private:
  DataType dtype_ = DataType::kUndefined;
  Shape shape_;
  int64_t num_elements_ = 0;
  std::shared_ptr<std::byte> buffer_;
};

}  // namespace qs
