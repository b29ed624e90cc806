// The training engine's parallel loops. They run on OpenMP, the pool oneDNN's products
// use (docs/architecture.md, Threads), and give each index to one thread, so that every
// sum keeps a fixed order whatever the thread count.
#pragma once

#include <cstdint>

namespace shrink::train {

/// f(i) for i in [0, n): one task per independent piece of work (a row, a channel, a plane).
template <class F>
void each(int64_t n, F&& f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
}

/// Elementwise loops: one thread for small arrays, where a parallel region costs more than it saves.
template <class F>
void each_element(int64_t n, F&& f) {
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace shrink::train
