// Large tensor buffers recycled across runs, in size classes.
//
// A run of ResNet-18 at batch 16 allocates ~170 MB of activations. Fresh
// allocations that size come from mmap, so every run paid ~43 000 page
// faults (115 ms of kernel time in a 740 ms run) plus the zero-fill. The
// cache keeps freed buffers of at least kMinCachedBytes and hands them out
// again for requests of the same size class; a model served at a steady
// batch size then runs without touching fresh pages. Like ONNX Runtime's
// arena, it holds on to about one run's peak working set per concurrent run;
// unlike it, the idle bytes are capped (SetLimit) and can be dropped (Clear).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace qs {

class BufferCache {
 public:
  // Smaller buffers come from malloc's bins, which recycle them well enough.
  static constexpr size_t kMinCachedBytes = size_t{256} << 10;
  static constexpr size_t kDefaultLimitBytes = size_t{256} << 20;

  // The process-wide cache every Tensor allocation goes through. Never
  // destroyed, so buffers freed during static destruction still have a home.
  static BufferCache& Global();

  // A 64-byte aligned buffer of at least `bytes`, contents unspecified. The
  // deleter gives it back to this cache, which must outlive it.
  std::shared_ptr<std::byte> Allocate(size_t bytes);

  // Caps the bytes kept idle: a buffer freed beyond the cap goes back to the
  // system. Lowering the cap drops the longest-idle buffers first.
  void SetLimit(size_t bytes);
  // Returns every idle buffer to the system (e.g. after a model build).
  void Clear();

  // Debugging aid for tests: while on, every large buffer handed out is
  // filled with 0xFF bytes (a float NaN), so a kernel that reads output
  // elements it did not write (a zero-fill it relied on) shows up as NaN.
  void SetJunkFill(bool on);

  struct Stats {
    size_t idle_bytes = 0;
    size_t idle_buffers = 0;
    uint64_t hits = 0;    // large requests served from idle buffers
    uint64_t misses = 0;  // large requests that allocated
  };
  Stats stats() const;

  BufferCache() = default;
  BufferCache(const BufferCache&) = delete;
  BufferCache& operator=(const BufferCache&) = delete;
  ~BufferCache();

 private:
  struct Idle {
    std::byte* data;
    uint64_t returned;  // return order: the smallest has been idle longest
  };
  void Return(std::byte* p, size_t bytes);
  void EvictLocked(size_t limit);

  mutable std::mutex mu_;
  // Idle buffers by capacity (a size class); lower_bound finds the class.
  // Guarded by mu_.
  std::multimap<size_t, Idle> idle_;
  uint64_t returns_ = 0;
  size_t idle_bytes_ = 0;
  size_t limit_ = kDefaultLimitBytes;
  bool junk_fill_ = false;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace qs
