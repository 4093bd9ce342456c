// glibc gives each new thread a malloc arena of its own until there are 8
// per core. gRPC's synchronous server starts and ends request threads as
// load comes and goes, so under sustained concurrent load (with calls
// cancelled and timing out) the arenas multiply and fragment: in the soak
// (docs/RELIABILITY.md#soak) the server's RSS grew 10-14 % within 2-3
// minutes after the warm-up and kept creeping, while with one arena per core
// it stays flat at no measurable latency cost. `quantserve serve` therefore
// caps the arenas at start-up, unless MALLOC_ARENA_MAX is set.
#pragma once

namespace qs {

// The arena cap for `cores` CPUs: one per core, at least 2. 0 (leave glibc
// alone) when `env_arena_max` (MALLOC_ARENA_MAX) is set and non-empty.
int MallocArenaLimit(unsigned cores, const char* env_arena_max);

// Applies MallocArenaLimit(hardware cores, getenv("MALLOC_ARENA_MAX")) with
// mallopt(M_ARENA_MAX); call before starting threads. Returns the cap set
// (0 = none).
int LimitMallocArenas();

// Hands memory malloc holds free back to the kernel (malloc_trim; the
// engine's BuildModel already empties its BufferCache): building
// a quantized model leaves the fp32 calibration pass's activations and
// weights freed but resident in the heap, which made a w8a8 variant served
// alone cost more RSS than its fp32 original. Called after each model build.
void ReturnFreedMemory();

}  // namespace qs
