// What the benchmarks share: the best wall time of repeated runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>

/// The shortest of `reps` runs of f, in seconds.
inline double best_seconds(int reps, const std::function<void()>& f) {
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}
