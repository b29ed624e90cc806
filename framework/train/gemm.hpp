// The matrix products training is made of, for float (oneDNN) and double (plain loops,
// for gradient checks in double precision). Same argument convention as cpu::matmul:
// dst[m, n] = op(a)[m, k] * op(b)[k, n], row-major; trans_a: a is stored [k, m];
// trans_b: b is stored [n, k].
#pragma once

#include "cpu/matmul.hpp"
#include "train/parallel.hpp"

#include <cstdint>

namespace shrink::train {

/// In an order of sums fixed by the shape (cpu::matmul_fixed_order): oneDNN's own threading
/// splits the inner dimension of some of training's products on some CPUs (AVX2-only ones),
/// and training must give the same bytes on any thread count.
inline void gemm(const float* a, bool trans_a, const float* b, bool trans_b, float* dst, int64_t m, int64_t n, int64_t k) {
    cpu::matmul_fixed_order(a, trans_a, b, trans_b, dst, m, n, k);
}

inline void gemm(const double* a, bool trans_a, const double* b, bool trans_b, double* dst, int64_t m, int64_t n,
                 int64_t k) {
    // Each row of dst is summed by one thread in a fixed order: the same bits on any thread count.
    each(m, [&](int64_t i) {
        double* row = dst + i * n;
        for (int64_t j = 0; j < n; ++j) row[j] = 0;
        for (int64_t p = 0; p < k; ++p) {
            const double x = trans_a ? a[p * m + i] : a[i * k + p];
            if (trans_b)
                for (int64_t j = 0; j < n; ++j) row[j] += x * b[j * k + p];
            else
                for (int64_t j = 0; j < n; ++j) row[j] += x * b[p * n + j];
        }
    });
}

}  // namespace shrink::train
