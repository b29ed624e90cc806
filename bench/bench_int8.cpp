// W8A8 on oneDNN's integer matmul against the float paths, one linear layer (4096 x 4096
// unless given) at several batch sizes, 2 threads: the float layer (f32 matmul), the W8A8
// layer simulated in float (its input rounded onto the 8-bit grid, the weight decoded: what
// shrink ran before), and the W8A8 layer on u8 x s8 -> s32 (cpu/int8_linear.hpp, input
// quantization included). GOP/s count 2 m n k; the machine's ceilings (sgemm and u8s8 at
// 4096^3) are measured in the same run. Best of 5.
//   bench_int8 [N K]
#include "cpu/int8_linear.hpp"
#include "cpu/matmul.hpp"
#include "cpu/threading.hpp"
#include "timing.hpp"
#include "util/machine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    using namespace shrink;
    const int64_t n = argc > 2 ? std::atoll(argv[1]) : 4096, k = argc > 2 ? std::atoll(argv[2]) : 4096;
    cpu::set_thread_count(2);
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(n * k)), bias(static_cast<size_t>(n), 0.01f), scales(static_cast<size_t>(n));
    for (float& v : w) v = 0.02f * normal(gen);
    std::vector<int8_t> codes(w.size());
    for (int64_t r = 0; r < n; ++r) {
        float top = 0;
        for (int64_t j = 0; j < k; ++j) top = std::max(top, std::fabs(w[size_t(r * k + j)]));
        scales[size_t(r)] = top / 127;
        for (int64_t j = 0; j < k; ++j) codes[size_t(r * k + j)] = int8_t(std::nearbyint(w[size_t(r * k + j)] / scales[size_t(r)]));
    }
    std::vector<float> decoded(w.size());
    for (size_t i = 0; i < w.size(); ++i) decoded[i] = scales[i / size_t(k)] * float(codes[i]);
    const cpu::u8_grid grid{4.0f / 255, 128};

    std::printf("one %lldx%lld linear layer, 2 threads; CPU: %s; best of 5\n", (long long)n, (long long)k, shrink::cpu_model().c_str());
    {
        const int64_t s = 4096;
        std::vector<float> a(size_t(s * s), 0.5f), c(size_t(s * s));
        std::vector<int8_t> q(size_t(s * s), 3);
        std::vector<float> ones(size_t(s), 1.0f), zero(size_t(s), 0.0f);
        const double f32 = best_seconds(5, [&] { cpu::matmul(a.data(), false, a.data(), true, c.data(), s, s, s); });
        const cpu::kernel i8 = cpu::make_int8_linear_kernel(s, s, s, q.data(), ones.data(), grid, zero.data(), false);
        const double int8 = best_seconds(5, [&] { i8.run(a.data(), c.data()); });
        std::printf("ceilings at 4096^3: sgemm %.0f GFLOP/s, u8s8 with input quantization %.0f GOP/s\n", 2.0 * s * s * s / f32 / 1e9,
                    2.0 * s * s * s / int8 / 1e9);
    }
    std::printf("%8s %14s %18s %14s %10s\n", "rows", "f32 GFLOP/s", "W8A8 simulated", "W8A8 int8", "int8/f32");
    for (const int64_t m : {1, 16, 128, 512, 2048}) {
        std::vector<float> x(size_t(m * k)), y(size_t(m * n)), xq(x.size());
        for (float& v : x) v = std::fabs(normal(gen));
        const cpu::kernel f32 = cpu::make_linear_kernel(m, n, k, w.data(), bias.data(), false);
        const cpu::kernel sim = cpu::make_linear_kernel(m, n, k, decoded.data(), bias.data(), false);
        const cpu::kernel i8 = cpu::make_int8_linear_kernel(m, n, k, codes.data(), scales.data(), grid, bias.data(), false);
        const double t_f32 = best_seconds(5, [&] { f32.run(x.data(), y.data()); });
        const double t_sim = best_seconds(5, [&] {
            for (size_t i = 0; i < x.size(); ++i)
                xq[i] = (std::clamp(std::nearbyint(x[i] / grid.scale) + float(grid.zero_point), 0.0f, 255.0f) - float(grid.zero_point)) *
                        grid.scale;
            sim.run(xq.data(), y.data());
        });
        const double t_i8 = best_seconds(5, [&] { i8.run(x.data(), y.data()); });
        const double ops = 2.0 * double(m) * double(n) * double(k) / 1e9;
        std::printf("%8lld %14.1f %18.1f %14.1f %9.2fx\n", (long long)m, ops / t_f32, ops / t_sim, ops / t_i8, t_f32 / t_i8);
    }
    return 0;
}
