// Dense linear algebra for the plugins that work on input Hessians (calibrator.hessian,
// quantizer.gptq): a kernel library they link, not a plugin. Float32, blocked so that nearly
// all the work is matrix products on oneDNN's sgemm (the CPU's GEMM peak) rather than
// loops: the product itself and Cholesky (n^3 / 3 flops), whose small diagonal blocks are
// factored in double, which keeps the float factor as accurate as a float Cholesky can be.
// Every result is the same on any thread count (tests/unit/linalg_test.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace linalg {

/// One product C = alpha op(A) op(B) + beta C, row-major (op(A) is m x k).
struct product {
    bool trans_a = false, trans_b = false;
    int64_t m = 0, n = 0, k = 0;
    float alpha = 1;
    const float* a = nullptr;
    int64_t lda = 0;
    const float* b = nullptr;
    int64_t ldb = 0;
    float beta = 0;
    float* c = nullptr;
    int64_t ldc = 0;
};

/// Independent products (no C overlapping another's operands), each on one thread, spread
/// over the host's OpenMP threads: each result is the same on any thread count.
void gemm_batch(const std::vector<product>& products);

/// C = alpha op(A) op(B) + beta C, row-major (op(A) is m x k), on oneDNN's sgemm with the
/// host's OpenMP thread count, the same bytes on any count. Throws std::runtime_error if
/// oneDNN refuses the call.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc);

/// f(0), ..., f(count - 1) on the OpenMP threads oneDNN's products use, so that a kernel
/// alternating its own loops with products keeps one pool of threads awake rather than
/// two (TBB's and OpenMP's) waking each other. The first exception f throws is rethrown.
void parallel_for(uint64_t count, const std::function<void(uint64_t)>& f);

/// Unblocked, in double: a (n x n row-major) becomes L with a = L L^T in its lower half
/// (its upper half left as it was). False at a non-positive pivot. For small matrices
/// and references.
bool cholesky(std::vector<double>& a, uint64_t n);

/// Unblocked, in double: the inverse of a lower triangular L (only its lower half read),
/// its upper half zero.
std::vector<double> invert_lower(const std::vector<double>& l, uint64_t n);

/// In place, a (n x n row-major, only its lower half read) becomes L with a = L L^T, its
/// strict upper half zero. False, at once, when a pivot is not positive (a is then garbage).
bool cholesky(float* a, uint64_t n);

}  // namespace linalg
