#include "engine/buffer_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define QS_ASAN 1
#endif
#ifdef QS_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace qs {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kPage = 4096;
// Large buffers come in size classes a quarter octave apart (1, 1.25, 1.5,
// 1.75 x 2^k, whole pages): a server's dynamic batches vary in size, and
// with exact sizes every batch size needed buffers of its own. Serving
// ResNet-18 w8a8 to 32 closed-loop clients (batches of 2..32 rows), 28 % of
// the large requests missed the 256 MiB cache and page faults took 15 % of
// the server's CPU: 58-62 samples/s; with classes 63-65 (a 2 GiB cache,
// 1.4 GB idle, reached 79, against 68 with classes at 256 MiB, both with
// batcher.cc's 50 ms cancel poll). A class wastes at most a fifth of a
// buffer.
size_t SizeClass(size_t bytes) {
  size_t octave = kPage;
  while (octave * 2 <= bytes) octave *= 2;
  const size_t quarter = std::max(kPage, octave / 4);
  return (bytes + quarter - 1) / quarter * quarter;
}

// Idle buffers are poisoned under ASan, so a stale pointer into one is
// still reported (as use-after-poison) although the memory is not freed.
void Poison(std::byte* p, size_t bytes) {
#ifdef QS_ASAN
  ASAN_POISON_MEMORY_REGION(p, bytes);
#else
  (void)p, (void)bytes;
#endif
}

void Unpoison(std::byte* p, size_t bytes) {
#ifdef QS_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#else
  (void)p, (void)bytes;
#endif
}

std::byte* AlignedNew(size_t bytes) {
  void* p = std::aligned_alloc(kAlignment, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<std::byte*>(p);
}

// Large buffers are mapped and unmapped directly: glibc serves frees below
// its dynamic mmap threshold (up to 32 MiB) back into the heap, where the
// pages stay resident, so a server's RSS after a burst of large batches
// depended on heap fragmentation rather than on what it holds. Evicted
// buffers now leave the process at once. Under ASan they stay malloc'd, so
// its redzones still catch overflows past a buffer's end (not into the
// slack between a tensor's size and its size class).
std::byte* MapLarge(size_t bytes) {
#ifdef QS_ASAN
  return AlignedNew(bytes);
#else
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<std::byte*>(p);  // page aligned
#endif
}

void Release(std::byte* p, size_t bytes) {
#ifdef QS_ASAN
  Unpoison(p, bytes);  // the allocator may write its own bookkeeping there
  std::free(p);
#else
  munmap(p, bytes);
#endif
}

}  // namespace

BufferCache& BufferCache::Global() {
  static BufferCache* cache = new BufferCache();  // never destroyed
  return *cache;
}

BufferCache::~BufferCache() { Clear(); }

std::shared_ptr<std::byte> BufferCache::Allocate(size_t bytes) {
  if (bytes < kMinCachedBytes) {
    const size_t rounded = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
    return std::shared_ptr<std::byte>(AlignedNew(rounded), [](std::byte* p) { std::free(p); });
  }
  size_t capacity = SizeClass(bytes);
  std::byte* p = nullptr;
  bool junk = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    junk = junk_fill_;
    auto it = idle_.lower_bound(capacity);
    // An idle buffer of the same class; when the cache is too full to keep a
    // new buffer of this size anyway, any larger idle one (already resident)
    // beats mapping fresh pages that fault in and are unmapped again.
    const bool full = idle_bytes_ + capacity > limit_;
    if (it != idle_.end() && (full || it->first == capacity)) {
      capacity = it->first;
      p = it->second.data;
      idle_bytes_ -= capacity;
      idle_.erase(it);
      ++hits_;
    } else {
      ++misses_;
    }
  }
  if (p != nullptr) {
    Unpoison(p, capacity);
  } else {
    p = MapLarge(capacity);
  }
  if (junk) std::memset(p, 0xFF, capacity);
  return std::shared_ptr<std::byte>(p, [this, capacity](std::byte* q) { Return(q, capacity); });
}

void BufferCache::Return(std::byte* p, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Beyond the cap the returned buffer goes, not an older one: a steady
    // workload cycles through the same buffers every run, and evicting the
    // longest-idle one would evict exactly the next one needed (LRU on a
    // cycle larger than the cache misses every time; measured: ResNet-18
    // b16 with a 64 MiB cap, 370k page faults in 6 s instead of 100k).
    if (idle_bytes_ + bytes <= limit_) {
      Poison(p, bytes);
      idle_.emplace(bytes, Idle{p, ++returns_});
      idle_bytes_ += bytes;
      return;
    }
  }
  Release(p, bytes);
}

void BufferCache::EvictLocked(size_t limit) {
  // Longest idle first. A linear scan: a cache holds tens of buffers.
  while (idle_bytes_ > limit && !idle_.empty()) {
    auto oldest = idle_.begin();
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->second.returned < oldest->second.returned) oldest = it;
    }
    idle_bytes_ -= oldest->first;
    Release(oldest->second.data, oldest->first);
    idle_.erase(oldest);
  }
}

void BufferCache::SetLimit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  limit_ = bytes;
  EvictLocked(limit_);
}

void BufferCache::SetJunkFill(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  junk_fill_ = on;
}

void BufferCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  EvictLocked(0);
}

BufferCache::Stats BufferCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{idle_bytes_, idle_.size(), hits_, misses_};
}

}  // namespace qs
