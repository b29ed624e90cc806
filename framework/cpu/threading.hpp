// The one place that owns the CPU thread count.
//
// Debian's oneDNN runs on OpenMP while our own loops run on TBB: two pools. Both are
// capped here to the same count so that together they never oversubscribe the cores.
#pragma once

#include <cstdint>

namespace shrink::cpu {

/// Sets OpenMP's (oneDNN's) and TBB's thread count; 0 = the number of cores.
void set_thread_count(int threads);

/// The count in force.
int thread_count();

/// The size of one core's level-2 cache in bytes (1 MiB where the system does not say).
int64_t l2_cache_bytes();

}  // namespace shrink::cpu
