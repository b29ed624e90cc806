#include "cpu/gemv.hpp"

namespace shrink::cpu {

namespace {

// Outputs computed together: their dot products share each load of the input and run as
// independent chains of fused multiply-adds. One chain at a time waits on the FMA
// latency, about 4x slower on the reference head (bench/bench_runtime, batch 1).
constexpr int64_t block = 8;

// Each dot product is one fixed-order SIMD reduction, whatever the block: the result
// does not depend on how outputs are grouped or split between threads. Always inlined,
// so that each clone of gemv_block compiles them for its own instruction set.
__attribute__((always_inline)) inline float dot(const float* x, const float* w, int64_t k) {
    float a = 0.0f;
#pragma omp simd reduction(+ : a)
    for (int64_t i = 0; i < k; ++i) a += x[i] * w[i];
    return a;
}

__attribute__((always_inline)) inline void dot8(const float* x, const float* w, int64_t k, float* acc) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    const float *w0 = w, *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k, *w4 = w + 4 * k, *w5 = w + 5 * k, *w6 = w + 6 * k, *w7 = w + 7 * k;
#pragma omp simd reduction(+ : a0, a1, a2, a3, a4, a5, a6, a7)
    for (int64_t i = 0; i < k; ++i) {
        const float xi = x[i];
        a0 += xi * w0[i], a1 += xi * w1[i], a2 += xi * w2[i], a3 += xi * w3[i];
        a4 += xi * w4[i], a5 += xi * w5[i], a6 += xi * w6[i], a7 += xi * w7[i];
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
}

// The outputs j0 .. j0 + width for every row. Its own function, for target_clones: the
// body of an OpenMP parallel loop is outlined into a function that does not inherit the
// attribute, and would be built for the baseline ISA (SSE2) alone.
__attribute__((target_clones("avx512f", "avx2", "default")))
void gemv_block(const float* src, int64_t rows, const float* w, const float* bias, float* dst, int64_t n, int64_t k, bool relu,
                int64_t j0, int64_t width) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = src + r * k;
        float acc[block];
        if (width == block) {
            dot8(x, w, k, acc);
        } else {
            for (int64_t b = 0; b < width; ++b) acc[b] = dot(x, w + b * k, k);
        }
        for (int64_t b = 0; b < width; ++b) {
            const float y = acc[b] + (bias ? bias[j0 + b] : 0.0f);
            dst[r * n + j0 + b] = relu && y < 0.0f ? 0.0f : y;
        }
    }
}

}  // namespace

void gemv_rows(const float* src, int64_t rows, const float* weight, const float* bias, float* dst, int64_t n, int64_t k,
               bool relu) {
    const int64_t blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (n * k >= 16384)
    for (int64_t jb = 0; jb < blocks; ++jb) {
        const int64_t j0 = jb * block;
        gemv_block(src, rows, weight + j0 * k, bias, dst, n, k, relu, j0, n - j0 < block ? n - j0 : block);
    }
}

}  // namespace shrink::cpu
