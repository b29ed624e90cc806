// Float matrix multiply on oneDNN, with primitives cached by problem shape.
#pragma once

#include "cpu/kernel.hpp"

#include <cstdint>

namespace shrink::cpu {

/// dst[m, n] = op(a)[m, k] * op(b)[k, n] (+ bias[n]), all row-major.
/// trans_a: `a` is stored [k, m]; trans_b: `b` is stored [n, k] (a Linear's [out, in] weight).
void matmul(const float* a, bool trans_a, const float* b, bool trans_b, float* dst, int64_t m, int64_t n, int64_t k,
            const float* bias = nullptr);

/// matmul without bias whose every sum has an order fixed by the shape, not by the thread
/// count: oneDNN splits the inner dimension of some shapes across threads (a narrow dst
/// with a long k; seen on AVX2-only CPUs in training's products), and its partial sums
/// then round differently on 1 and 2 threads. Here dst is cut into tiles chosen from the
/// shape alone, each one single-threaded product. Training's products use it, so that
/// training gives the same bytes at any thread count.
void matmul_fixed_order(const float* a, bool trans_a, const float* b, bool trans_b, float* dst, int64_t m, int64_t n, int64_t k);

/// One linear layer's matmul for a fixed batch size: dst[m, n] = relu?(src[m, k] *
/// weight[n, k]^T + bias[n]). The weights are reordered once, at creation, into the
/// blocked layout oneDNN prefers for this problem; `in_place`: read from `weight` as it
/// lies (it must outlive the kernel), no copy. Plain in, plain out.
kernel make_linear_kernel(int64_t m, int64_t n, int64_t k, const float* weight, const float* bias, bool relu,
                          bool in_place = false);

/// oneDNN's version as "major.minor.patch".
const char* onednn_version();

}  // namespace shrink::cpu
