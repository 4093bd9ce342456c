// Dispatch on element types: type-agnostic moves for layout ops (Slice,
// Expand, Where, ...) copy elements as unsigned integers of their byte size;
// converting ops (Cast, Pow) need the real C++ type.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace qs {

// Calls fn(T{}) with T the unsigned integer type of `dtype`'s element size.
template <typename Fn>
void WithElementType(DataType dtype, Fn&& fn) {
  switch (DataTypeSize(dtype)) {
    case 1: fn(uint8_t{}); break;
    case 2: fn(uint16_t{}); break;
    case 4: fn(uint32_t{}); break;
    default: fn(uint64_t{}); break;
  }
}

// Calls fn(T{}) with T the C++ type of a numeric `dtype`; false (and no
// call) for other types.
template <typename Fn>
bool WithNumericType(DataType t, Fn&& fn) {
  switch (t) {
    case DataType::kFloat32: fn(float{}); return true;
    case DataType::kFloat64: fn(double{}); return true;
    case DataType::kInt64: fn(int64_t{}); return true;
    case DataType::kInt32: fn(int32_t{}); return true;
    case DataType::kInt8: fn(int8_t{}); return true;
    case DataType::kUint8: fn(uint8_t{}); return true;
    case DataType::kBool: fn(bool{}); return true;
    default: return false;
  }
}

}  // namespace qs
