#include "server/malloc_arenas.h"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <thread>


namespace qs {

int MallocArenaLimit(unsigned cores, const char* env_arena_max) {
  if (env_arena_max != nullptr && env_arena_max[0] != '\0') return 0;
  return static_cast<int>(std::max(2u, cores));
}

int LimitMallocArenas() {
  const int limit =
      MallocArenaLimit(std::thread::hardware_concurrency(), std::getenv("MALLOC_ARENA_MAX"));
  if (limit > 0 && mallopt(M_ARENA_MAX, limit) != 1) return 0;
  return limit;
}

void ReturnFreedMemory() { malloc_trim(0); }

}  // namespace qs
