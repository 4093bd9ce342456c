// The cores this process may run on: its CPU affinity mask (taskset, a
// container's cpuset), which is also what OpenMP sizes its default team
// by; std::thread::hardware_concurrency() counts the host's cores.
#pragma once

#include <sched.h>

#include <algorithm>
#include <thread>

namespace qs {

inline int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace qs
