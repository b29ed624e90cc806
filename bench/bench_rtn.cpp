// Benchmark of quantizer.rtn's kernel on a 4096 x 4096 float32 matrix drawn from
// N(0, 0.02): GB/s of float input on 1 and 2 threads, next to a plain copy of the same
// bytes (the memory-bandwidth ceiling), and the relative Frobenius error ||W - Q(W)|| / ||W||.
//
//   build/bin/bench_rtn [repetitions]
#include "rtn_kernel.hpp"
#include "timing.hpp"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
    const uint64_t rows = 4096, cols = 4096, n = rows * cols;
    std::vector<float> w(n), copy(n);
    std::mt19937_64 gen(42);
    for (uint64_t i = 0; i < n; i += 2) {  // Box-Muller, N(0, 0.02)
        const double u1 = (double(gen() >> 11) + 1) * 0x1.0p-53, u2 = double(gen() >> 11) * 0x1.0p-53;
        const double r = std::sqrt(-2 * std::log(u1)) * 0.02;
        w[i] = float(r * std::cos(6.283185307179586 * u2));
        w[i + 1] = float(r * std::sin(6.283185307179586 * u2));
    }
    const double gb = double(n * sizeof(float)) / 1e9;
    double norm = 0;
    for (float x : w) norm += double(x) * x;
    norm = std::sqrt(norm);

    struct config {
        const char* name;
        rtn::options o;
    };
    const config configs[] = {{"int8 per-channel", {8, true, rtn::granularity::per_channel, 0}},
                              {"int4 per-group-32", {4, true, rtn::granularity::per_group, 32}}};
    std::printf("quantizer.rtn on a %llux%llu f32 matrix (%.0f MB), best of %d\n", (unsigned long long)rows,
                (unsigned long long)cols, gb * 1e3, reps);
    std::printf("%-20s %8s %10s %12s\n", "", "threads", "GB/s", "rel. error");
    for (int threads : {1, 2}) {
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, size_t(threads));
        const double copy_s = best_seconds(reps, [&] {
            tbb::parallel_for(tbb::blocked_range<uint64_t>(0, n, n / 64), [&](const tbb::blocked_range<uint64_t>& r) {
                std::memcpy(copy.data() + r.begin(), w.data() + r.begin(), (r.end() - r.begin()) * sizeof(float));
            });
        });
        std::printf("%-20s %8d %10.1f %12s\n", "memory copy", threads, gb / copy_s, "-");
        for (const config& c : configs) {
            rtn::result r;
            const double s = best_seconds(reps, [&] { r = rtn::quantize(w.data(), rows, cols, c.o); });
            const std::vector<float> back = rtn::dequantize(r, rows, cols);
            double err = 0;
            for (uint64_t i = 0; i < n; ++i) err += double(w[i] - back[i]) * (w[i] - back[i]);
            std::printf("%-20s %8d %10.1f %12.5f\n", c.name, threads, gb / s, std::sqrt(err) / norm);
        }
    }
    return 0;
}
