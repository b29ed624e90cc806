#include "cpu/gemv.hpp"

namespace shrink::cpu {

__attribute__((target_clones("avx512f", "avx2", "default")))
void gemv_rows(const float* src, int64_t rows, const float* weight, const float* bias, float* dst, int64_t n, int64_t k,
               bool relu) {
#pragma omp parallel for schedule(static) if (n * k > 32768)
    for (int64_t j = 0; j < n; ++j) {
        const float* w = weight + j * k;
        for (int64_t r = 0; r < rows; ++r) {
            const float* x = src + r * k;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < k; ++i) acc += x[i] * w[i];
            acc += bias ? bias[j] : 0.0f;
            dst[r * n + j] = relu && acc < 0.0f ? 0.0f : acc;
        }
    }
}

}  // namespace shrink::cpu
