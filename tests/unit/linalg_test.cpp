// The Hessian plugins' dense linear algebra (plugins/linalg) and calibrator.hessian's sum
// against direct double references on odd sizes, and the same bytes on 1 and 2 threads,
// including a product shape for which oneDNN's sgemm splits the inner dimension across
// threads (and so rounds differently) when called directly.
#include "cpu/threading.hpp"
#include "hessian_kernel.hpp"
#include "linalg.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

using namespace shrink;

namespace {

std::vector<float> normal(uint64_t n, uint64_t seed) {
    rng g(seed);
    std::vector<float> v(n);
    for (float& x : v) x = float(g.normal());
    return v;
}

/// f's output on 1 thread and on 2 (OpenMP and TBB both), the count restored after.
template <class T>
std::pair<T, T> on_one_and_two(const std::function<T()>& f) {
    const int before = cpu::thread_count();
    cpu::set_thread_count(1);
    T one = f();
    cpu::set_thread_count(2);
    T two = f();
    cpu::set_thread_count(before);
    return {std::move(one), std::move(two)};
}

/// A symmetric positive definite n x n matrix: B^T B / k + 0.1 I, B k x n.
std::vector<float> spd(uint64_t n, uint64_t seed) {
    const uint64_t k = n + 20;
    const std::vector<float> b = normal(k * n, seed);
    std::vector<float> a(n * n);
    for (uint64_t i = 0; i < n; ++i)
        for (uint64_t j = 0; j < n; ++j) {
            double s = 0;
            for (uint64_t r = 0; r < k; ++r) s += double(b[r * n + i]) * b[r * n + j];
            a[i * n + j] = float(s / double(k) + (i == j ? 0.1 : 0.0));
        }
    return a;
}

}  // namespace

TEST_CASE("linalg::gemm equals a double product for every transposition and leading dimension", "[linalg]") {
    const int64_t m = 300, n = 1100, k = 37, pad = 5;  // more than one tile each way; rows longer than the operands
    const std::vector<float> a = normal(uint64_t((m + pad) * (k + pad)), 1), b = normal(uint64_t((k + pad) * (n + pad)), 2);
    for (const bool ta : {false, true})
        for (const bool tb : {false, true}) {
            const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
            auto at = [&](int64_t i, int64_t p) { return double(ta ? a[uint64_t(p * lda + i)] : a[uint64_t(i * lda + p)]); };
            auto bt = [&](int64_t p, int64_t j) { return double(tb ? b[uint64_t(j * ldb + p)] : b[uint64_t(p * ldb + j)]); };
            std::vector<float> c(uint64_t(m * ldc), 1.0f);
            linalg::gemm(ta, tb, m, n, k, -0.5f, a.data(), lda, b.data(), ldb, 2.0f, c.data(), ldc);
            double worst = 0;
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    double s = 0;
                    for (int64_t p = 0; p < k; ++p) s += at(i, p) * bt(p, j);
                    worst = std::max(worst, std::fabs(double(c[uint64_t(i * ldc + j)]) - (2.0 - 0.5 * s)));
                }
            INFO("trans_a " << ta << " trans_b " << tb);
            CHECK(worst < 1e-4);
        }
}

TEST_CASE("linalg::gemm gives the same bytes on 1 and 2 threads where a plain sgemm does not", "[linalg]") {
    // A narrow C with a long inner dimension: oneDNN splits k across 2 threads.
    const int64_t m = 4096, n = 128, k = 2048;
    const std::vector<float> a = normal(uint64_t(m * k), 3), b = normal(uint64_t(n * k), 4);
    const auto [one, two] = on_one_and_two<std::vector<float>>([&] {
        std::vector<float> c(uint64_t(m * n));
        linalg::gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
        return c;
    });
    CHECK(one == two);
}

TEST_CASE("linalg::cholesky matches its definition; a non-positive pivot is reported", "[linalg]") {
    for (const uint64_t n : {1u, 127u, 300u}) {  // inside one block, and across three with a ragged last one
        const std::vector<float> a = spd(n, n);
        std::vector<float> l = a;
        REQUIRE(linalg::cholesky(l.data(), n));
        double worst = 0, upper = 0;
        for (uint64_t i = 0; i < n; ++i)
            for (uint64_t j = 0; j < n; ++j) {
                double s = 0;
                for (uint64_t p = 0; p < n; ++p) s += double(l[i * n + p]) * l[j * n + p];
                worst = std::max(worst, std::fabs(s - a[i * n + j]));
                if (j > i) upper = std::max(upper, double(std::fabs(l[i * n + j])));
            }
        INFO("n " << n);
        CHECK(worst < 1e-4);
        CHECK(upper == 0);
    }
    std::vector<float> indefinite = spd(200, 9);
    indefinite[150 * 200 + 150] = -1;  // a pivot in the second block goes negative
    CHECK_FALSE(linalg::cholesky(indefinite.data(), 200));
}

TEST_CASE("calibrator.hessian's sum equals X^T X in double, over batches, the same bytes on 1 and 2 threads", "[linalg]") {
    const uint64_t cols = 300, rows1 = 50, rows2 = 2100;  // two batches; one product splits k when called directly
    const std::vector<float> x1 = normal(rows1 * cols, 5), x2 = normal(rows2 * cols, 6);
    const auto [one, two] = on_one_and_two<std::vector<double>>([&] {
        std::vector<double> h(cols * cols, 0.0);
        hessian::accumulate_lower(h, x1.data(), rows1, cols);
        hessian::accumulate_lower(h, x2.data(), rows2, cols);
        hessian::mirror(h, cols);
        return h;
    });
    CHECK(one == two);
    double worst = 0;
    for (uint64_t i = 0; i < cols; ++i)
        for (uint64_t j = 0; j < cols; ++j) {
            double s = 0;
            for (uint64_t r = 0; r < rows1; ++r) s += double(x1[r * cols + i]) * x1[r * cols + j];
            for (uint64_t r = 0; r < rows2; ++r) s += double(x2[r * cols + i]) * x2[r * cols + j];
            worst = std::max(worst, std::fabs(one[i * cols + j] - s) / double(rows1 + rows2));
        }
    CHECK(worst < 1e-5);
}
