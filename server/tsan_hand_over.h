// Happens-before edges that ThreadSanitizer cannot see. gRPC core is not
// built with TSan, so when it hands a callback call from one thread to
// another (the handler's thread -> OnCancel/OnDone on a gRPC thread; a
// batcher worker's Finish -> OnDone and the response's destruction), the
// ordering it guarantees is invisible, and our own objects look raced.
// HandOver(p) before giving `p` to gRPC, TakeOver(p) where gRPC gives it
// back, declare that edge to TSan; in other builds they compile to nothing.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define QS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QS_TSAN 1
#endif
#endif

#ifdef QS_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace qs {

inline void HandOver([[maybe_unused]] void* p) {
#ifdef QS_TSAN
  __tsan_release(p);
#endif
}

inline void TakeOver([[maybe_unused]] void* p) {
#ifdef QS_TSAN
  __tsan_acquire(p);
#endif
}

}  // namespace qs
