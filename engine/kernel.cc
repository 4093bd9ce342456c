#include "engine/kernel.h"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace qs {

RunContext::RunContext(const dnnl::engine& engine)
    : engine_(engine), stream_(engine) {}

void* RunContext::Scratch(ScratchSlot slot, size_t bytes) {
  Buffer& b = scratch_[static_cast<int>(slot)];
  if (bytes > b.bytes || b.data == nullptr) {
    size_t rounded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw std::bad_alloc();
    b.data = std::shared_ptr<std::byte>(static_cast<std::byte*>(p),
                                        [](std::byte* q) { std::free(q); });
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
