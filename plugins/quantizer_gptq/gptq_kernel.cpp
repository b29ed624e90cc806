#include "gptq_kernel.hpp"
#include "linalg.hpp"

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

/// RTN's scale and zero point for a range [lo, hi] that holds 0.
grid grid_of_range(float lo, float hi, const options& o) {
    if (o.symmetric) return {std::fabs(std::max(-lo, hi) / float(code_max(o))), 0};
    const float scale = std::fabs((hi - lo) / float((1 << o.bits) - 1));
    if (scale == 0) return {0, 0};
    const float z = float(code_min(o)) + std::nearbyint(-lo / scale);
    return {scale, int32_t(std::min(std::max(z, float(code_min(o))), float(code_max(o))))};
}

/// RTN's scale and zero point for values x[0], x[stride], ... (n of them), in float as RTN.
template <class T>
grid grid_of(const T* x, uint64_t n, uint64_t stride, const options& o) {
    float lo = 0, hi = 0;  // the range always holds 0
    for (uint64_t i = 0; i < n; ++i) {
        lo = std::min(lo, float(x[i * stride]));
        hi = std::max(hi, float(x[i * stride]));
    }
    return grid_of_range(lo, hi, o);
}

/// The code of x on grid g, and the value it stands for (as the host decodes it).
int8_t round_to(double x, const grid& g, const options& o, double& value) {
    const float inv = g.scale == 0 ? 0.0f : 1.0f / g.scale;
    const float v = std::min(std::max(float(x) * inv + float(g.zero), float(code_min(o))), float(code_max(o)));
    const int32_t q = int32_t(std::nearbyint(v));
    value = double(g.scale * float(q - g.zero));
    return int8_t(q);
}

/// H^-1 from H's lower Cholesky factor L: (L^-1)^T L^-1.
std::vector<double> inverse_from_cholesky(const std::vector<double>& l, uint64_t n) {
    const std::vector<double> li = linalg::invert_lower(l, n);
    std::vector<double> inv(n * n, 0.0);
    for (uint64_t i = 0; i < n; ++i)
        for (uint64_t j = 0; j <= i; ++j) {
            double s = 0;
            for (uint64_t k = i; k < n; ++k) s += li[k * n + i] * li[k * n + j];
            inv[i * n + j] = inv[j * n + i] = s;
        }
    return inv;
}

/// What both implementations share, fixed before any update: the column order, the dead
/// inputs (never active: their weights zero, their Hessian diagonal taken as 1), the mean
/// diagonal, and the grids that do not follow the updated weights.
struct order {
    uint64_t rows = 0, cols = 0, gs = 0, groups = 0;
    std::vector<uint64_t> perm;  // position -> original column
    std::vector<bool> dead;      // by original column
    std::vector<grid> fixed;     // [rows, groups]; empty when each group's grid comes from its updated weights
    double mean = 0;             // of H's diagonal, dead inputs counted as 1

    /// Weight (r, position i) as the update starts: permuted, dead inputs zero.
    float weight(const float* w, uint64_t r, uint64_t i) const { return dead[perm[i]] ? 0.0f : w[r * cols + perm[i]]; }
    uint64_t group(uint64_t i) const { return perm[i] / gs; }
    /// H (original columns a, b) with a dead input's diagonal 1.
    double h(const std::vector<double>& m, uint64_t a, uint64_t b) const { return a == b && dead[a] ? 1.0 : m[a * cols + b]; }
};

order order_of(const float* w, uint64_t rows, uint64_t cols, const std::vector<double>& h, const options& o) {
    if (h.size() != cols * cols) throw std::invalid_argument("the Hessian is not cols x cols");
    order d;
    d.rows = rows, d.cols = cols, d.gs = o.group_size ? o.group_size : cols, d.groups = (cols + d.gs - 1) / d.gs;
    d.perm.resize(cols);
    std::iota(d.perm.begin(), d.perm.end(), 0);
    d.dead.assign(cols, false);
    for (uint64_t i = 0; i < cols; ++i) d.dead[i] = h[i * cols + i] == 0;
    for (uint64_t i = 0; i < cols; ++i) d.mean += d.h(h, i, i) / double(cols);
    if (o.act_order)
        std::stable_sort(d.perm.begin(), d.perm.end(), [&](uint64_t a, uint64_t b) { return d.h(h, a, a) > d.h(h, b, b); });
    // One grid per row comes from the row before any update (its first column has none yet);
    // act_order's static groups likewise, from each group's weights before any update.
    if (!o.group_size || o.act_order) {
        d.fixed.resize(rows * d.groups);
        std::vector<float> row(cols);
        for (uint64_t r = 0; r < rows; ++r) {
            for (uint64_t c = 0; c < cols; ++c) row[c] = d.dead[c] ? 0.0f : w[r * cols + c];
            for (uint64_t g = 0; g < d.groups; ++g) d.fixed[r * d.groups + g] = grid_of(row.data() + g * d.gs, std::min(d.gs, cols - g * d.gs), 1, o);
        }
    }
    return d;
}

/// The grid position i of row r uses: fixed, or found on the updated weights at its group's first column.
struct row_grids {
    const order& d;
    const options& o;
    std::vector<grid> dynamic;  // this row's, by group

    grid at(uint64_t r, uint64_t i, const double* row) {
        if (!d.fixed.empty()) return d.fixed[r * d.groups + d.group(i)];
        if (i % d.gs == 0) dynamic[d.group(i)] = grid_of(row + i, std::min(d.gs, d.cols - i), 1, o);
        return dynamic[d.group(i)];
    }
};

/// The result from codes by position, [cols][ld], and grids [rows][groups].
result assemble(const order& d, const std::vector<int8_t>& codes, uint64_t ld, const std::vector<grid>& grids, double damp, int raised,
                const options& o) {
    result out;
    out.group_size = d.gs;
    out.damp = damp;
    out.damp_raised = raised;
    out.q.resize(d.rows * d.cols);
    constexpr uint64_t t = 64;  // tiles of the transpose, so reads and writes both stay in cache
    linalg::parallel_for((d.rows + t - 1) / t, [&](uint64_t b) {
        for (uint64_t i0 = 0; i0 < d.cols; i0 += t)
            for (uint64_t r = b * t; r < std::min(d.rows, b * t + t); ++r)
                for (uint64_t i = i0; i < std::min(d.cols, i0 + t); ++i) out.q[r * d.cols + d.perm[i]] = codes[i * ld + r];
    });
    out.scales.resize(d.rows * d.groups);
    if (!o.symmetric) out.zero_points.resize(d.rows * d.groups);
    for (uint64_t k = 0; k < d.rows * d.groups; ++k) {
        out.scales[k] = grids[k].scale;
        if (!o.symmetric) out.zero_points[k] = int8_t(grids[k].zero);
    }
    return out;
}

void check(const options& o) {
    if (o.bits < 2 || o.bits > 8) throw std::invalid_argument("bits must be 2 to 8");
    if (o.block_size == 0) throw std::invalid_argument("block_size must be at least 1");
}

[[noreturn]] void indefinite(double damp) {
    throw std::runtime_error("the Hessian is not positive definite even with damping " + std::to_string(damp));
}

constexpr int max_raises = 6;  // damping tried at o.damp x 10^0 .. 10^6

/// The factor GPTQ's updates use, in float: R with H = R R^T, R upper triangular, each
/// column divided by its diagonal (so R~ has a unit diagonal), of the damped, permuted H.
/// With J the reversal of the column order, R = J L J where J H J = L L^T (a Cholesky
/// factorization); reversing a row-major matrix's storage applies J on both sides at once.
///
/// Why R and not the paper's U (H^-1 = U^T U): U = R^-1, and GPTQ's sequence of updates,
/// w_j <- w_j - (w_i - q_i) U_ij / U_ii for i < j, sums to
///     w_j(before quantizing j) = w_j + sum_{i<j} (w_i - q_i) R_ij / R_jj,
/// with w the weights as given (q - w = delta D^-1 U for delta the per-column rounding
/// errors and D = diag(U): invert U's unit upper form). So one factorization serves where
/// the paper inverts H, factors the inverse and inverts back implicitly: a third of the
/// flops, and no inverse of an ill-conditioned H in float.
std::vector<float> scaled_factor(const order& d, const std::vector<double>& h, const options& o, double& damp, int& raised) {
    const uint64_t n = d.cols;
    std::vector<float> a(n * n);
    for (damp = o.damp, raised = 0;; damp *= 10, ++raised) {
        if (raised > max_raises) indefinite(damp / 10);
        linalg::parallel_for(n, [&](uint64_t i) {
            const uint64_t pi = d.perm[n - 1 - i];
            const double* hi = h.data() + pi * n;
            for (uint64_t j = 0; j < i; ++j) a[i * n + j] = float(hi[d.perm[n - 1 - j]]);
            a[i * n + i] = float(d.h(h, pi, pi) + damp * d.mean);
        });
        if (linalg::cholesky(a.data(), n)) break;
    }
    std::reverse(a.begin(), a.end());
    std::vector<float> diag(n);
    for (uint64_t j = 0; j < n; ++j) diag[j] = a[j * n + j];
    linalg::parallel_for(n, [&](uint64_t i) {
        float* ri = a.data() + i * n;
        for (uint64_t j = i; j < n; ++j) ri[j] /= diag[j];
    });
    return a;
}

/// Quantizes the block's columns t = 0..width-1 (positions i1 + t) of `count` rows. Every
/// array is by column, all starting at the block's first column and the chunk's first row:
/// wt the weights with every earlier correction (columns wt_ld apart, updated in place),
/// and, columns ld apart, w0 the weights as given, code the codes, err each column's w - q,
/// which also corrects the block's later columns through R~.
struct block_sweep {
    const order& d;
    const options& o;
    const float* r;  // R~
    std::vector<grid>& grids;
    bool dynamic;

    __attribute__((target_clones("avx512f", "avx2", "default"))) void run(uint64_t i1, uint64_t width, uint64_t r0, uint64_t count, float* wt,
                                                                          uint64_t wt_ld, const float* w0, int8_t* code, float* err,
                                                                          uint64_t ld) const {
        const float lo_code = float(code_min(o)), hi_code = float(code_max(o));
        std::vector<float> scale(count), inv(count), zero(count), lo(count), hi(count), v(dynamic ? std::min(width, d.gs) * count : 0);
        for (uint64_t t = 0; t < width; ++t) {
            const uint64_t i = i1 + t, g = d.group(i);
            const float* col = wt + t * wt_ld;
            if (dynamic && i % d.gs == 0) {
                // The group's grid, on its weights as GPTQ's updates have left them when its
                // first column comes up: each later column corrected for the columns before
                // the group only. In R~'s form that state is the group's columns corrected
                // for one another with no rounding (w - q = w - v): a small solve.
                const uint64_t len = std::min(width, t + d.gs) - t;
                for (uint64_t a = 0; a < len; ++a) std::copy_n(col + a * wt_ld, count, v.begin() + int64_t(a * count));
                std::fill(lo.begin(), lo.end(), 0.0f), std::fill(hi.begin(), hi.end(), 0.0f);
                for (uint64_t a = 0; a < len; ++a) {
                    float* va = v.data() + a * count;
                    const float* wa = w0 + (t + a) * ld;
                    for (uint64_t k = 0; k < count; ++k) lo[k] = std::min(lo[k], va[k]), hi[k] = std::max(hi[k], va[k]);
                    const float* ra = r + (i + a) * d.cols + i;
                    for (uint64_t b = a + 1; b < len; ++b) {
                        float* vb = v.data() + b * count;
                        for (uint64_t k = 0; k < count; ++k) vb[k] += (wa[k] - va[k]) * ra[b];
                    }
                }
                for (uint64_t k = 0; k < count; ++k) grids[(r0 + k) * d.groups + g] = grid_of_range(lo[k], hi[k], o);
            }
            if (!dynamic || i % d.gs == 0)
                for (uint64_t k = 0; k < count; ++k) {
                    const grid& gr = grids[(r0 + k) * d.groups + g];
                    scale[k] = gr.scale, zero[k] = float(gr.zero), inv[k] = gr.scale == 0 ? 0.0f : 1.0f / gr.scale;
                }
            const float* ri = r + i * d.cols + i1;
            const float* wi = w0 + t * ld;
            float* e = err + t * ld;
            int8_t* q8 = code + t * ld;
            for (uint64_t k = 0; k < count; ++k) {
                const float q = std::nearbyint(std::min(std::max(col[k] * inv[k] + zero[k], lo_code), hi_code));
                q8[k] = int8_t(q);
                e[k] = wi[k] - scale[k] * (q - zero[k]);
            }
            for (uint64_t j = t + 1; j < width; ++j) {
                float* c = wt + j * wt_ld;
                const float f = ri[j];
                for (uint64_t k = 0; k < count; ++k) c[k] += e[k] * f;
            }
        }
    }
};

}  // namespace

// Blocks of columns left to right, on the weights held by column (transposed once), so
// that every column step is a vector operation across rows. Within a block, rows in
// parallel chunks; the block's differences w - q then reach the later columns by products
// (the lazy update, the bulk of the flops). Two levels: a block's reach the rest of its
// superblock at once, a superblock's reach the columns after it in one product with a
// long inner dimension, which runs nearer the GEMM peak than one per block. Each row's
// arithmetic is the same on any thread count.
result quantize(const float* w, uint64_t rows, uint64_t cols, const std::vector<double>& h, const options& o) {
    check(o);
    const order d = order_of(w, rows, cols, h, o);
    double damp = 0;
    int raised = 0;
    const std::vector<float> r = scaled_factor(d, h, o, damp, raised);
    // By column, each column `ld` floats long: rows padded so that a column's start does not
    // fall on the same cache sets as every other column's (a chunk touches 128 columns).
    const uint64_t ld = (rows + 15) / 16 * 16 + 16;
    std::vector<float> w0(cols * ld);  // the weights as given, by position: [cols][ld]
    constexpr uint64_t tile = 64;
    linalg::parallel_for((cols + tile - 1) / tile, [&](uint64_t b) {
        for (uint64_t r0 = 0; r0 < rows; r0 += tile)
            for (uint64_t i = b * tile; i < std::min(cols, b * tile + tile); ++i)
                for (uint64_t row = r0; row < std::min(rows, r0 + tile); ++row) w0[i * ld + row] = d.weight(w, row, i);
    });
    std::vector<float> wt = w0;  // with the corrections so far
    const bool dynamic = d.fixed.empty();
    // A group's grid is found on its weights as corrected so far, so a block holds whole groups.
    const uint64_t bs = dynamic ? (o.block_size + d.gs - 1) / d.gs * d.gs : o.block_size;
    const uint64_t super = bs * std::max<uint64_t>(1, 512 / bs);
    std::vector<int8_t> codes(cols * ld);  // [cols][ld]
    std::vector<grid> grids = dynamic ? std::vector<grid>(rows * d.groups) : d.fixed;
    std::vector<float> err(std::min(super, cols) * ld);  // a superblock's w - q, [column][ld]
    const block_sweep sweep{d, o, r.data(), grids, dynamic};
    constexpr uint64_t chunk = 64;
    const uint64_t chunks = (rows + chunk - 1) / chunk;
    for (uint64_t s1 = 0; s1 < cols; s1 += super) {
        const uint64_t s2 = std::min(cols, s1 + super);
        for (uint64_t i1 = s1; i1 < s2; i1 += bs) {
            const uint64_t i2 = std::min(s2, i1 + bs), width = i2 - i1;
            float* e = err.data() + (i1 - s1) * ld;
            linalg::parallel_for(chunks, [&](uint64_t c) {
                // The chunk's slice of the block, copied together: the sweep's updates then
                // stay within one small buffer in the first-level cache.
                const uint64_t r0 = c * chunk, count = std::min(chunk, rows - r0), at = i1 * ld + r0;
                std::vector<float> slice(width * count);
                for (uint64_t t = 0; t < width; ++t) std::copy_n(wt.data() + at + t * ld, count, slice.data() + t * count);
                sweep.run(i1, width, r0, count, slice.data(), count, w0.data() + at, codes.data() + at, e + r0, ld);
            });
            // W^T[i2:s2] += R~[i1:i2, i2:s2]^T (W - Q)^T[i1:i2]
            linalg::gemm(true, false, int64_t(s2 - i2), int64_t(rows), int64_t(width), 1.0f, r.data() + i1 * cols + i2, int64_t(cols), e,
                         int64_t(ld), 1.0f, wt.data() + i2 * ld, int64_t(ld));
        }
        // W^T[s2:] += R~[s1:s2, s2:]^T (W - Q)^T[s1:s2]
        linalg::gemm(true, false, int64_t(cols - s2), int64_t(rows), int64_t(s2 - s1), 1.0f, r.data() + s1 * cols + s2, int64_t(cols),
                     err.data(), int64_t(ld), 1.0f, wt.data() + s2 * ld, int64_t(ld));
    }
    return assemble(d, codes, ld, grids, damp, raised, o);
}

result quantize_reference(const float* w, uint64_t rows, uint64_t cols, const std::vector<double>& h, const options& o) {
    check(o);
    const order d = order_of(w, rows, cols, h, o);
    std::vector<double> hp(cols * cols), hinv;
    for (uint64_t i = 0; i < cols; ++i)
        for (uint64_t j = 0; j < cols; ++j) hp[i * cols + j] = d.h(h, d.perm[i], d.perm[j]);
    double damp = o.damp;
    int raised = 0;
    for (;; damp *= 10, ++raised) {
        if (raised > max_raises) indefinite(damp / 10);
        std::vector<double> l = hp;
        for (uint64_t i = 0; i < cols; ++i) l[i * cols + i] += damp * d.mean;
        if (!linalg::cholesky(l, cols)) continue;
        hinv = inverse_from_cholesky(l, cols);
        break;
    }
    std::vector<int8_t> codes(rows * cols);
    std::vector<grid> grids(rows * d.groups);
    std::vector<double> row(cols);
    for (uint64_t r = 0; r < rows; ++r) {
        std::vector<double> hi = hinv;  // shrinks as columns are quantized
        for (uint64_t i = 0; i < cols; ++i) row[i] = d.weight(w, r, i);
        row_grids rg{d, o, std::vector<grid>(d.groups)};
        for (uint64_t i = 0; i < cols; ++i) {
            const grid g = rg.at(r, i, row.data());
            grids[r * d.groups + d.group(i)] = g;
            double value = 0;
            codes[i * rows + r] = round_to(row[i], g, o, value);
            const double di = hi[i * cols + i], e = (row[i] - value) / di;
            for (uint64_t j = i + 1; j < cols; ++j) row[j] -= e * hi[i * cols + j];
            // OBS: remove column i from the inverse of the remaining columns' Hessian.
            for (uint64_t a = i + 1; a < cols; ++a)
                for (uint64_t b = i + 1; b < cols; ++b) hi[a * cols + b] -= hi[a * cols + i] * hi[i * cols + b] / di;
        }
    }
    return assemble(d, codes, rows, grids, damp, raised, o);
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
