// `quantserve serve` caps glibc's malloc arenas (server/malloc_arenas.h): many
// live threads share at most one arena per core instead of one each, which
// keeps the server's RSS flat under the soak's churn of request threads.
// Its own binary: the process must not have made arenas before the cap.
#include <gtest/gtest.h>
#include <malloc.h>

#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "server/malloc_arenas.h"

namespace qs {
namespace {

// Arenas glibc has made so far (malloc_info lists one <heap> per arena).
int ArenaCount() {
  char* buf = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&buf, &size);
  malloc_info(0, f);
  std::fclose(f);
  const std::string xml(buf, size);
  std::free(buf);
  int n = 0;
  for (size_t pos = xml.find("<heap nr="); pos != std::string::npos;
       pos = xml.find("<heap nr=", pos + 1)) {
    ++n;
  }
  return n;
}

TEST(MallocArenasTest, OnePerCoreAtLeastTwoUnlessTheEnvironmentSaysOtherwise) {
  EXPECT_EQ(MallocArenaLimit(0, nullptr), 2);  // core count unknown
  EXPECT_EQ(MallocArenaLimit(1, nullptr), 2);
  EXPECT_EQ(MallocArenaLimit(2, nullptr), 2);
  EXPECT_EQ(MallocArenaLimit(16, nullptr), 16);
  EXPECT_EQ(MallocArenaLimit(2, ""), 2);
  EXPECT_EQ(MallocArenaLimit(2, "8"), 0);  // MALLOC_ARENA_MAX wins
}

// Resident set size of this process in bytes (/proc/self/statm).
long ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident * 4096;
}

TEST(MallocArenasTest, ReturnFreedMemoryShrinksTheResidentSet) {
  // 64 MiB in 64 KiB blocks (below the mmap threshold, so in the heap),
  // touched, then freed all but the last: glibc keeps the freed pages
  // resident (the live block at the top stops the heap from shrinking).
  std::vector<char*> blocks;
  for (int i = 0; i < 1024; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(64 << 10)));
    for (int j = 0; j < (64 << 10); j += 4096) blocks.back()[j] = 1;
  }
  for (size_t i = 0; i + 1 < blocks.size(); ++i) std::free(blocks[i]);
  const long before = ResidentBytes();
  ReturnFreedMemory();
  const long after = ResidentBytes();
  std::free(blocks.back());
  ASSERT_GT(before, 0);
  EXPECT_LT(after, before - (32L << 20)) << "before " << before << ", after " << after;
}

TEST(MallocArenasTest, ManyLiveThreadsShareTheCappedArenas) {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) GTEST_SKIP() << "MALLOC_ARENA_MAX is set";
  const int limit = LimitMallocArenas();
  ASSERT_GT(limit, 0);
  // Uncapped, each of these threads (all alive at once) would get an arena
  // of its own, up to 8 per core.
  const int threads = 4 * limit + 4;
  std::barrier sync(threads + 1);
  std::vector<std::jthread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&] {
      void* volatile p = std::malloc(4096);  // volatile: not optimized away
      static_cast<char*>(p)[0] = 1;
      sync.arrive_and_wait();  // every thread has allocated
      sync.arrive_and_wait();  // the arenas were counted
      std::free(p);
    });
  }
  sync.arrive_and_wait();
  const int arenas = ArenaCount();
  sync.arrive_and_wait();
  EXPECT_LE(arenas, limit) << threads << " threads";
}

}  // namespace
}  // namespace qs
