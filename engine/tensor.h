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

// Float -> int64 the way a model author means it: truncated toward zero,
// saturated at the int64 range, NaN -> 0. A plain static_cast is undefined
// behaviour outside the range, and model files (shape tensors, attributes)
// are untrusted input.
int64_t SaturatingToInt64(double v);

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

class Tensor;

// Copies `bytes` of little-endian wire data (ONNX / gRPC raw_data) into `t`'s
// buffer. Bool bytes are normalized to 0/1: the wire allows any nonzero byte
// for true, and loading e.g. 0x80 as a C++ bool is undefined behaviour.
void CopyRawBytes(const void* src, size_t bytes, Tensor& t);

class Tensor {
 public:
  Tensor() = default;
  // Allocates a zero-filled tensor (large buffers are recycled through
  // BufferCache). Callers check sizes before allocating (see
  // CompileOptions::max_tensor_bytes); this constructor trusts them.
  Tensor(DataType dtype, Shape shape);

  // A tensor with unspecified contents whose buffer holds at least `bytes`
  // and its logical size: for kernel outputs a primitive writes in full
  // (skipping the zero-fill matters for activations of tens of MB), and for
  // values kept in a padded oneDNN layout (OpContext::out_layout_free; the
  // primitive zeroes the padding). byte_size() stays the logical size.
  static Tensor Uninitialized(DataType dtype, Shape shape, size_t bytes = 0);

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
