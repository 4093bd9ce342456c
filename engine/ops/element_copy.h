// Type-agnostic element moves for layout ops (Slice, Expand, Where, ...):
// elements are copied as unsigned integers of their byte size.
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

}  // namespace qs
