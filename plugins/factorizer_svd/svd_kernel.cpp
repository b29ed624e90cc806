#include "svd_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace svd {

decomposition decompose(const float* w, uint64_t rows, uint64_t cols) {
    // Orthogonalize the columns of A, where A is W^T when W is wide (so A has the fewer
    // columns): A V = U S, then W = V S U^T (or A = W: W = U S V^T).
    const bool transpose = rows < cols;
    const uint64_t m = transpose ? cols : rows;  // rows of A
    const uint64_t n = transpose ? rows : cols;  // columns of A, n <= m
    std::vector<double> a(m * n), v(n * n, 0.0);  // column-major: a[j * m + i]
    for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t c = 0; c < cols; ++c) {
            const double x = w[r * cols + c];
            if (transpose) a[r * m + c] = x;
            else a[c * m + r] = x;
        }
    for (uint64_t j = 0; j < n; ++j) v[j * n + j] = 1.0;

    for (int sweep = 0; sweep < 60; ++sweep) {
        double off = 0;
        for (uint64_t p = 0; p + 1 < n; ++p)
            for (uint64_t q = p + 1; q < n; ++q) {
                double* ap = &a[p * m];
                double* aq = &a[q * m];
                double alpha = 0, beta = 0, gamma = 0;
                for (uint64_t i = 0; i < m; ++i) {
                    alpha += ap[i] * ap[i];
                    beta += aq[i] * aq[i];
                    gamma += ap[i] * aq[i];
                }
                if (gamma == 0 || std::fabs(gamma) <= 1e-15 * std::sqrt(alpha * beta)) continue;
                off = std::max(off, std::fabs(gamma) / std::sqrt(alpha * beta));
                const double zeta = (beta - alpha) / (2 * gamma);
                const double t = std::copysign(1.0, zeta) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
                const double c = 1 / std::sqrt(1 + t * t), s = c * t;
                for (uint64_t i = 0; i < m; ++i) {
                    const double x = ap[i], y = aq[i];
                    ap[i] = c * x - s * y;
                    aq[i] = s * x + c * y;
                }
                double* vp = &v[p * n];
                double* vq = &v[q * n];
                for (uint64_t i = 0; i < n; ++i) {
                    const double x = vp[i], y = vq[i];
                    vp[i] = c * x - s * y;
                    vq[i] = s * x + c * y;
                }
            }
        if (off < 1e-12) break;
    }

    std::vector<double> norm(n);
    for (uint64_t j = 0; j < n; ++j) {
        double s = 0;
        for (uint64_t i = 0; i < m; ++i) s += a[j * m + i] * a[j * m + i];
        norm[j] = std::sqrt(s);
    }
    std::vector<uint64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](uint64_t x, uint64_t y) { return norm[x] > norm[y]; });

    decomposition d;
    d.k = n;
    d.sigma.resize(n);
    d.left.assign(rows * n, 0.0);
    d.right.assign(cols * n, 0.0);
    for (uint64_t jj = 0; jj < n; ++jj) {
        const uint64_t j = order[jj];
        d.sigma[jj] = norm[j];
        const double inv = norm[j] > 0 ? 1 / norm[j] : 0;
        // Column j of A/sigma is a singular vector of length m; column j of V has length n.
        std::vector<double>& u_side = transpose ? d.right : d.left;  // length m
        std::vector<double>& v_side = transpose ? d.left : d.right;  // length n
        for (uint64_t i = 0; i < m; ++i) u_side[i * n + jj] = a[j * m + i] * inv;
        for (uint64_t i = 0; i < n; ++i) v_side[i * n + jj] = v[j * n + i];
    }
    return d;
}

uint64_t rank_for_energy(const std::vector<double>& sigma, double energy) {
    double total = 0;
    for (double s : sigma) total += s * s;
    if (total == 0) return 1;
    double kept = 0;
    for (uint64_t r = 0; r < sigma.size(); ++r) {
        kept += sigma[r] * sigma[r];
        if (kept >= energy * total) return r + 1;
    }
    return sigma.size();
}

void factors(const decomposition& d, uint64_t rows, uint64_t cols, uint64_t rank, std::vector<float>& first,
             std::vector<float>& second) {
    first.assign(rank * cols, 0.0f);
    second.assign(rows * rank, 0.0f);
    for (uint64_t r = 0; r < rank; ++r) {
        for (uint64_t c = 0; c < cols; ++c) first[r * cols + c] = float(d.right[c * d.k + r]);
        for (uint64_t i = 0; i < rows; ++i) second[i * rank + r] = float(d.left[i * d.k + r] * d.sigma[r]);
    }
}

}  // namespace svd
