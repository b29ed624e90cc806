#include "linalg.hpp"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace linalg {

namespace {

constexpr uint64_t block = 128;      // columns a step of the blocked algorithms takes

/// The lower half of a's diagonal block at c0 (w x w), in double.
std::vector<double> diagonal_block(const float* a, uint64_t n, uint64_t c0, uint64_t w) {
    std::vector<double> d(w * w, 0.0);
    for (uint64_t i = 0; i < w; ++i)
        for (uint64_t j = 0; j <= i; ++j) d[i * w + j] = a[(c0 + i) * n + c0 + j];
    return d;
}

void put_block(float* a, uint64_t n, uint64_t c0, uint64_t w, const float* lower) {
    for (uint64_t i = 0; i < w; ++i)
        for (uint64_t j = 0; j < w; ++j) a[(c0 + i) * n + c0 + j] = j <= i ? lower[i * w + j] : 0.0f;
}

}  // namespace

std::vector<double> invert_lower(const std::vector<double>& l, uint64_t n) {
    std::vector<double> x(n * n, 0.0);
    for (uint64_t j = 0; j < n; ++j) {
        x[j * n + j] = 1 / l[j * n + j];
        for (uint64_t i = j + 1; i < n; ++i) {
            double s = 0;
            for (uint64_t k = j; k < i; ++k) s += l[i * n + k] * x[k * n + j];
            x[i * n + j] = -s / l[i * n + i];
        }
    }
    return x;
}

bool cholesky(std::vector<double>& a, uint64_t n) {
    for (uint64_t j = 0; j < n; ++j) {
        double d = a[j * n + j];
        for (uint64_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0)) return false;
        const double l = std::sqrt(d);
        a[j * n + j] = l;
        for (uint64_t i = j + 1; i < n; ++i) {
            double s = a[i * n + j];
            for (uint64_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / l;
        }
    }
    return true;
}

void gemm_batch(const std::vector<product>& products) {
    std::atomic<int> failed{int(dnnl_success)};
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < products.size(); ++i) {
        const product& p = products[i];
        if (p.m <= 0 || p.n <= 0) continue;
        const dnnl_status_t s = dnnl_sgemm(p.trans_a ? 'T' : 'N', p.trans_b ? 'T' : 'N', p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb,
                                           p.beta, p.c, p.ldc);
        if (s != dnnl_success) failed = int(s);
    }
    if (failed != int(dnnl_success)) throw std::runtime_error("oneDNN's sgemm failed (status " + std::to_string(failed.load()) + ")");
}

// oneDNN splits a product's inner dimension across threads for some shapes (a narrow C with
// a long k), and the partial sums then round differently on 1 and 2 threads. So C is cut
// into tiles, each one product on one thread (oneDNN does not nest parallelism: inside a
// parallel region it runs single-threaded): the tiles, chosen from the shape alone, decide
// the sums, not the threads. Tiles start at 1024 x 1024 (large, so that packing the
// operands, redone per tile, stays small next to the product) and halve, the longer side
// first, down to 128 until there are at least 8 to share out.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    int64_t tm = std::min<int64_t>(1024, m), tn = std::min<int64_t>(1024, n);
    while ((m + tm - 1) / tm * ((n + tn - 1) / tn) < 8 && std::max(tm, tn) > 128) (tm >= tn ? tm : tn) = (std::max(tm, tn) + 1) / 2;
    std::vector<product> tiles;
    for (int64_t i0 = 0; i0 < m; i0 += tm)
        for (int64_t j0 = 0; j0 < n; j0 += tn)
            tiles.push_back({trans_a, trans_b, std::min(tm, m - i0), std::min(tn, n - j0), k, alpha, trans_a ? a + i0 : a + i0 * lda, lda,
                             trans_b ? b + j0 * ldb : b + j0, ldb, beta, c + i0 * ldc + j0, ldc});
    gemm_batch(tiles);
}

void parallel_for(uint64_t count, const std::function<void(uint64_t)>& f) {
    std::exception_ptr error;
    std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic)
    for (uint64_t i = 0; i < count; ++i) {
        if (failed) continue;
        try {
            f(i);
        } catch (...) {
#pragma omp critical(linalg_parallel_for)
            if (!failed.exchange(true)) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

// Left-looking by blocks of columns: the block's columns receive every earlier block's
// contribution in one product (k = all the columns before it), its diagonal block is
// factored in double, and the rows below are solved against it through its inverse.
bool cholesky(float* a, uint64_t n) {
    for (uint64_t c0 = 0; c0 < n; c0 += block) {
        const uint64_t c1 = std::min(n, c0 + block), w = c1 - c0, below = n - c1;
        if (c0 > 0)  // a[c0:, c0:c1] -= L[c0:, :c0] L[c0:c1, :c0]^T
            gemm(false, true, int64_t(n - c0), int64_t(w), int64_t(c0), -1.0f, a + c0 * n, int64_t(n), a + c0 * n, int64_t(n), 1.0f,
                 a + c0 * n + c0, int64_t(n));
        std::vector<double> d = diagonal_block(a, n, c0, w);
        if (!cholesky(d, w)) return false;
        const std::vector<float> l(d.begin(), d.end());
        if (below) {  // L[c1:, c0:c1] = a[c1:, c0:c1] L_jj^-T
            const std::vector<double> x = invert_lower(d, w);
            const std::vector<float> inv(x.begin(), x.end());
            std::vector<float> panel(below * w);
            for (uint64_t i = 0; i < below; ++i) std::copy_n(a + (c1 + i) * n + c0, w, panel.data() + i * w);
            gemm(false, true, int64_t(below), int64_t(w), int64_t(w), 1.0f, panel.data(), int64_t(w), inv.data(), int64_t(w), 0.0f,
                 a + c1 * n + c0, int64_t(n));
        }
        put_block(a, n, c0, w, l.data());
    }
    for (uint64_t i = 0; i < n; ++i) std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0f);
    return true;
}

}  // namespace linalg
