#include "gptq_kernel.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace gptq {

namespace {

struct grid {
    float scale = 0;
    int32_t zero = 0;
};

int32_t code_max(const options& o) { return (1 << (o.bits - 1)) - 1; }
int32_t code_min(const options& o) { return o.symmetric ? -code_max(o) : -(1 << (o.bits - 1)); }

/// RTN's scale and zero point for values x[0], x[stride], ... (n of them), in float as RTN.
grid grid_of(const double* x, uint64_t n, uint64_t stride, const options& o) {
    float lo = 0, hi = 0;  // the range always holds 0
    for (uint64_t i = 0; i < n; ++i) {
        lo = std::min(lo, float(x[i * stride]));
        hi = std::max(hi, float(x[i * stride]));
    }
    if (o.symmetric) return {std::fabs(std::max(-lo, hi) / float(code_max(o))), 0};
    const float scale = std::fabs((hi - lo) / float((1 << o.bits) - 1));
    if (scale == 0) return {0, 0};
    const float z = float(code_min(o)) + std::nearbyint(-lo / scale);
    return {scale, int32_t(std::min(std::max(z, float(code_min(o))), float(code_max(o))))};
}

/// The code of x on grid g, and the value it stands for (as the host decodes it).
int8_t round_to(double x, const grid& g, const options& o, double& value) {
    const float inv = g.scale == 0 ? 0.0f : 1.0f / g.scale;
    const float v = std::min(std::max(float(x) * inv + float(g.zero), float(code_min(o))), float(code_max(o)));
    const int32_t q = int32_t(std::nearbyint(v));
    value = double(g.scale * float(q - g.zero));
    return int8_t(q);
}

/// In place: a = L with a = L L^T (lower, row-major n x n). False at a non-positive pivot.
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
        for (uint64_t k = j + 1; k < n; ++k) a[j * n + k] = 0;
    }
    return true;
}

/// H^-1 from H's lower Cholesky factor L: (L^-1)^T L^-1.
std::vector<double> inverse_from_cholesky(const std::vector<double>& l, uint64_t n) {
    std::vector<double> li(n * n, 0.0);  // L^-1, lower
    for (uint64_t j = 0; j < n; ++j) {
        li[j * n + j] = 1 / l[j * n + j];
        for (uint64_t i = j + 1; i < n; ++i) {
            double s = 0;
            for (uint64_t k = j; k < i; ++k) s += l[i * n + k] * li[k * n + j];
            li[i * n + j] = -s / l[i * n + i];
        }
    }
    std::vector<double> inv(n * n, 0.0);
    for (uint64_t i = 0; i < n; ++i)
        for (uint64_t j = 0; j <= i; ++j) {
            double s = 0;
            for (uint64_t k = i; k < n; ++k) s += li[k * n + i] * li[k * n + j];
            inv[i * n + j] = inv[j * n + i] = s;
        }
    return inv;
}

/// What both implementations share: H prepared (dead inputs, order, damping, inverse).
struct prepared {
    std::vector<uint64_t> perm;    // position -> original column
    std::vector<double> w;         // [rows, cols], columns in perm order, dead ones zero
    std::vector<double> hinv;      // H^-1 of the permuted, damped H
    std::vector<grid> static_grids;  // act_order with groups: [rows, groups] from the original w
    double damp = 0;
    int raised = 0;
};

prepared prepare(const float* w, uint64_t rows, uint64_t cols, std::vector<double>& h, const options& o) {
    if (h.size() != cols * cols) throw std::invalid_argument("the Hessian is not cols x cols");
    prepared p;
    p.perm.resize(cols);
    std::iota(p.perm.begin(), p.perm.end(), 0);
    std::vector<bool> dead(cols, false);
    for (uint64_t i = 0; i < cols; ++i)
        if (h[i * cols + i] == 0) dead[i] = true, h[i * cols + i] = 1;
    if (o.act_order)
        std::stable_sort(p.perm.begin(), p.perm.end(), [&](uint64_t a, uint64_t b) { return h[a * cols + a] > h[b * cols + b]; });
    const uint64_t gs = o.group_size ? o.group_size : cols, groups = (cols + gs - 1) / gs;
    if (o.act_order && o.group_size) {  // static groups: each group's grid from the weights before any update
        p.static_grids.resize(rows * groups);
        std::vector<double> row(cols);
        for (uint64_t r = 0; r < rows; ++r) {
            for (uint64_t c = 0; c < cols; ++c) row[c] = dead[c] ? 0 : w[r * cols + c];
            for (uint64_t g = 0; g < groups; ++g)
                p.static_grids[r * groups + g] = grid_of(row.data() + g * gs, std::min(gs, cols - g * gs), 1, o);
        }
    }
    p.w.resize(rows * cols);
    for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t i = 0; i < cols; ++i) p.w[r * cols + i] = dead[p.perm[i]] ? 0 : double(w[r * cols + p.perm[i]]);
    std::vector<double> hp(cols * cols);
    double mean = 0;
    for (uint64_t i = 0; i < cols; ++i) {
        for (uint64_t j = 0; j < cols; ++j) hp[i * cols + j] = h[p.perm[i] * cols + p.perm[j]];
        mean += hp[i * cols + i] / double(cols);
    }
    // Damping: the paper's 1% of the mean diagonal, raised tenfold while H stays indefinite.
    for (p.damp = o.damp;; p.damp *= 10, ++p.raised) {
        if (p.raised > 6) throw std::runtime_error("the Hessian is not positive definite even with damping " + std::to_string(p.damp / 10));
        std::vector<double> l = hp;
        for (uint64_t i = 0; i < cols; ++i) l[i * cols + i] += p.damp * mean;
        if (!cholesky(l, cols)) continue;
        p.hinv = inverse_from_cholesky(l, cols);
        return p;
    }
}

/// The grid column position i of row r uses: static, or fixed at its group's first column.
struct row_grids {
    const prepared& p;
    const options& o;
    uint64_t cols, gs, groups;
    std::vector<grid> dynamic;  // this row's, by group (no act_order)

    grid at(uint64_t r, uint64_t i, const double* row) {
        const uint64_t g = p.perm[i] / gs;
        if (!p.static_grids.empty()) return p.static_grids[r * groups + g];
        if (i % gs == 0) dynamic[g] = grid_of(row + i, std::min(gs, cols - i), 1, o);  // the updated weights
        return dynamic[g];
    }
};

result assemble(const prepared& p, const std::vector<int8_t>& codes, const std::vector<grid>& grids, uint64_t rows, uint64_t cols,
                const options& o) {
    const uint64_t gs = o.group_size ? o.group_size : cols, groups = (cols + gs - 1) / gs;
    result out;
    out.group_size = gs;
    out.damp = p.damp;
    out.damp_raised = p.raised;
    out.q.resize(rows * cols);
    for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t i = 0; i < cols; ++i) out.q[r * cols + p.perm[i]] = codes[r * cols + i];
    out.scales.resize(rows * groups);
    if (!o.symmetric) out.zero_points.resize(rows * groups);
    for (uint64_t k = 0; k < rows * groups; ++k) {
        out.scales[k] = grids[k].scale;
        if (!o.symmetric) out.zero_points[k] = int8_t(grids[k].zero);
    }
    return out;
}

void check(const options& o) {
    if (o.bits < 2 || o.bits > 8) throw std::invalid_argument("bits must be 2 to 8");
    if (o.block_size == 0) throw std::invalid_argument("block_size must be at least 1");
}

}  // namespace

result quantize(const float* w, uint64_t rows, uint64_t cols, std::vector<double> h, const options& o) {
    check(o);
    prepared p = prepare(w, rows, cols, h, o);
    // The upper Cholesky factor U of H^-1 (H^-1 = U^T U): row i of U holds what quantizing
    // column i passes on to the columns after it, already conditioned on those before.
    std::vector<double> u = p.hinv;
    if (!cholesky(u, cols)) throw std::runtime_error("the inverse Hessian lost positive definiteness; raise damp");
    std::vector<double> ut(cols * cols, 0.0);  // transpose: upper, row-major
    for (uint64_t i = 0; i < cols; ++i)
        for (uint64_t j = 0; j <= i; ++j) ut[j * cols + i] = u[i * cols + j];
    const uint64_t gs = o.group_size ? o.group_size : cols, groups = (cols + gs - 1) / gs, bs = o.block_size;
    std::vector<int8_t> codes(rows * cols);
    std::vector<grid> grids(rows * groups);
    // Rows are independent given U: tiles of rows in parallel, each through the blocks.
    constexpr uint64_t tile = 16;
    tbb::parallel_for(tbb::blocked_range<uint64_t>(0, (rows + tile - 1) / tile), [&](const tbb::blocked_range<uint64_t>& range) {
        std::vector<double> err(tile * bs);
        for (uint64_t t = range.begin(); t != range.end(); ++t) {
            const uint64_t r0 = t * tile, nr = std::min(tile, rows - r0);
            std::vector<row_grids> rg;
            for (uint64_t k = 0; k < nr; ++k) rg.push_back({p, o, cols, gs, groups, std::vector<grid>(groups)});
            for (uint64_t i1 = 0; i1 < cols; i1 += bs) {
                const uint64_t i2 = std::min(cols, i1 + bs);
                for (uint64_t k = 0; k < nr; ++k) {
                    double* row = p.w.data() + (r0 + k) * cols;
                    for (uint64_t i = i1; i < i2; ++i) {
                        const grid g = rg[k].at(r0 + k, i, row);
                        grids[(r0 + k) * groups + p.perm[i] / gs] = g;
                        double value = 0;
                        codes[(r0 + k) * cols + i] = round_to(row[i], g, o, value);
                        const double e = (row[i] - value) / ut[i * cols + i];
                        err[k * bs + (i - i1)] = e;
                        const double* ui = ut.data() + i * cols;
                        for (uint64_t j = i + 1; j < i2; ++j) row[j] -= e * ui[j];
                    }
                }
                // The lazy update: the block's errors reach the later columns at once.
                for (uint64_t k = 0; k < nr; ++k) {
                    double* row = p.w.data() + (r0 + k) * cols;
                    for (uint64_t i = i1; i < i2; ++i) {
                        const double e = err[k * bs + (i - i1)];
                        const double* ui = ut.data() + i * cols;
                        for (uint64_t j = i2; j < cols; ++j) row[j] -= e * ui[j];
                    }
                }
            }
        }
    });
    return assemble(p, codes, grids, rows, cols, o);
}

result quantize_reference(const float* w, uint64_t rows, uint64_t cols, std::vector<double> h, const options& o) {
    check(o);
    prepared p = prepare(w, rows, cols, h, o);
    const uint64_t gs = o.group_size ? o.group_size : cols, groups = (cols + gs - 1) / gs;
    std::vector<int8_t> codes(rows * cols);
    std::vector<grid> grids(rows * groups);
    for (uint64_t r = 0; r < rows; ++r) {
        std::vector<double> hinv = p.hinv;  // shrinks as columns are quantized
        double* row = p.w.data() + r * cols;
        row_grids rg{p, o, cols, gs, groups, std::vector<grid>(groups)};
        for (uint64_t i = 0; i < cols; ++i) {
            const grid g = rg.at(r, i, row);
            grids[r * groups + p.perm[i] / gs] = g;
            double value = 0;
            codes[r * cols + i] = round_to(row[i], g, o, value);
            const double d = hinv[i * cols + i], e = (row[i] - value) / d;
            for (uint64_t j = i + 1; j < cols; ++j) row[j] -= e * hinv[i * cols + j];
            // OBS: remove column i from the inverse of the remaining columns' Hessian.
            for (uint64_t a = i + 1; a < cols; ++a)
                for (uint64_t b = i + 1; b < cols; ++b) hinv[a * cols + b] -= hinv[a * cols + i] * hinv[i * cols + b] / d;
        }
    }
    return assemble(p, codes, grids, rows, cols, o);
}

std::vector<float> dequantize(const result& r, uint64_t rows, uint64_t cols) {
    const uint64_t groups = (cols + r.group_size - 1) / r.group_size;
    std::vector<float> out(rows * cols);
    for (uint64_t i = 0; i < rows; ++i)
        for (uint64_t c = 0; c < cols; ++c) {
            const uint64_t k = i * groups + c / r.group_size;
            const int32_t z = r.zero_points.empty() ? 0 : r.zero_points[k];
            out[i * cols + c] = r.scales[k] * float(int32_t(r.q[i * cols + c]) - z);
        }
    return out;
}

}  // namespace gptq
