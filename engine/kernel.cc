#include "engine/kernel.h"

#include <cstdlib>
#include <new>

namespace qs {

RunContext::RunContext(const dnnl::engine& engine)
    : engine_(engine), stream_(engine) {}

void* RunContext::Scratchpad(size_t bytes) {
  if (bytes > scratch_bytes_) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw std::bad_alloc();
    scratch_ = std::shared_ptr<std::byte>(static_cast<std::byte*>(p),
                                          [](std::byte* b) { std::free(b); });
    scratch_bytes_ = rounded;
  }
  return scratch_.get();
}

}  // namespace qs
