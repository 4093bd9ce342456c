#include "engine/kernel.h"

#include <algorithm>

#include "engine/buffer_cache.h"

namespace qs {

RunContext::RunContext(const dnnl::engine& engine)
    : engine_(engine), stream_(engine) {}

void* RunContext::Scratch(ScratchSlot slot, size_t bytes) {
  Buffer& b = scratch_[static_cast<int>(slot)];
  if (bytes > b.bytes || b.data == nullptr) {
    // Through the activation cache, like tensors: scratch sizes follow the
    // batch size, and malloc'd buffers of many sizes freed in turn fragmented
    // the heap (ResNet-18 w8a8 with dynamic batches: +60 MB RSS that never
    // went back, more than the int8 weights saved).
    const size_t rounded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    b.data = BufferCache::Global().Allocate(rounded);
    b.bytes = rounded;
  }
  return b.data.get();
}

void RunContext::TrimScratch(size_t keep_bytes) {
  for (int s = 0; s < static_cast<int>(ScratchSlot::kCount); ++s) {
    if (s == static_cast<int>(ScratchSlot::kPrimitive)) continue;  // small, reused every run
    if (scratch_[s].bytes > keep_bytes) scratch_[s] = Buffer{};
  }
}

}  // namespace qs
