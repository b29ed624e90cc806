#include "rtn_kernel.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

namespace rtn {

namespace {

struct params_of_group {
    float scale;
    int32_t zero;
};

// The row loop is cloned for AVX-512 and AVX2 and dispatched once per call, with its
// helpers inlined into each clone, so one portable binary still runs at vector speed.
// Rounding adds and subtracts 1.5 * 2^23, which rounds to nearest-even exactly for the
// clamped range (|v| <= 255) and vectorizes everywhere (no -ffast-math: it would drop it).
#define RTN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define RTN_INLINE inline __attribute__((always_inline))

constexpr float round_magic = 12582912.0f;  // 1.5 * 2^23

// A plain reduction: built with -ffinite-math-only -fno-signed-zeros, GCC vectorizes it
// (weights are finite: the host refuses NaN and infinity on load and on write).
RTN_INLINE void min_max(const float* __restrict x, uint64_t n, float& lo_out, float& hi_out) {
    float lo = 0, hi = 0;  // start at 0: the range always contains 0
    for (uint64_t i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    lo_out = lo;
    hi_out = hi;
}

RTN_INLINE params_of_group range_of(const float* x, uint64_t n, int bits, bool symmetric) {
    const int32_t qmax = (1 << (bits - 1)) - 1;
    float lo = 0, hi = 0;
    min_max(x, n, lo, hi);
    // A scale is never negative; fabs settles the sign of a zero one, which the vectorized
    // min and max leave to chance (and which a GPU's reduction must reproduce bit for bit).
    if (symmetric) return {std::fabs(std::max(-lo, hi) / float(qmax)), 0};
    const float scale = std::fabs((hi - lo) / float((1 << bits) - 1));
    if (scale == 0) return {0, 0};
    const int32_t qmin = -(1 << (bits - 1));
    const float z = float(qmin) + ((-lo / scale + round_magic) - round_magic);
    return {scale, int32_t(std::min(std::max(z, float(qmin)), float(qmax)))};
}

RTN_INLINE void round_group(const float* __restrict x, int8_t* __restrict q, uint64_t n, params_of_group p, int bits, bool symmetric) {
    const int32_t qmax = (1 << (bits - 1)) - 1;
    const float lo = symmetric ? float(-qmax) : float(-(1 << (bits - 1)));
    const float hi = float(qmax);
    const float inv = p.scale == 0 ? 0.0f : 1.0f / p.scale;  // an all-zero group maps to the zero point
    const float zero = float(p.zero);
    for (uint64_t i = 0; i < n; ++i) {
        const float v = std::min(std::max(x[i] * inv + zero, lo), hi);
        q[i] = int8_t(int32_t((v + round_magic) - round_magic));
    }
}

/// Rows [begin, end): groups of g elements (g = cols per channel); scale/zero per group,
/// or the given `fixed` parameters for every element when per-tensor. G > 0 is g known
/// at compile time, which lets the small groups of 4-bit formats unroll completely.
template <uint64_t G>
RTN_INLINE void rows_body(const float* w, uint64_t begin, uint64_t end, uint64_t cols, uint64_t g, int bits,
                          bool symmetric, const params_of_group* fixed, result& r) {
    if (G) g = G;
    const uint64_t groups = (cols + g - 1) / g;
    // Locals, not r's members: int8_t stores may alias anything, which would force
    // reloads of the vectors' data pointers inside the loop.
    int8_t* __restrict q = r.q.data();
    float* __restrict scales = r.scales.data();
    int8_t* __restrict zeros = r.zero_points.data();
    for (uint64_t row = begin; row < end; ++row)
        for (uint64_t k = 0; k < groups; ++k) {
            const uint64_t start = row * cols + k * g;
            const uint64_t n = G && cols % G == 0 ? G : std::min(g, cols - k * g);
            const params_of_group p = fixed ? *fixed : range_of(w + start, n, bits, symmetric);
            if (!fixed) {
                scales[row * groups + k] = p.scale;
                if (!symmetric) zeros[row * groups + k] = int8_t(p.zero);
            }
            round_group(w + start, q + start, n, p, bits, symmetric);
        }
}

RTN_CLONES void quantize_rows(const float* w, uint64_t begin, uint64_t end, uint64_t cols, uint64_t g, int bits,
                              bool symmetric, const params_of_group* fixed, result& r) {
    if (!fixed && cols % g == 0) {
        if (g == 32) return rows_body<32>(w, begin, end, cols, g, bits, symmetric, fixed, r);
        if (g == 64) return rows_body<64>(w, begin, end, cols, g, bits, symmetric, fixed, r);
        if (g == 128) return rows_body<128>(w, begin, end, cols, g, bits, symmetric, fixed, r);
    }
    rows_body<0>(w, begin, end, cols, g, bits, symmetric, fixed, r);
}

RTN_CLONES params_of_group tensor_range(const float* w, uint64_t n, int bits, bool symmetric) {
    return range_of(w, n, bits, symmetric);
}

}  // namespace

result quantize(const float* w, uint64_t rows, uint64_t cols, const options& o) {
    result r;
    r.q.resize(rows * cols);
    params_of_group whole{};
    const params_of_group* fixed = nullptr;
    uint64_t g = cols;
    if (o.gran == granularity::per_tensor) {
        whole = tensor_range(w, rows * cols, o.bits, o.symmetric);
        fixed = &whole;
        r.group_size = 0;
        r.scales = {whole.scale};
        if (!o.symmetric) r.zero_points = {int8_t(whole.zero)};
    } else {
        g = o.gran == granularity::per_channel ? cols : std::min<uint64_t>(o.group_size, cols);
        r.group_size = g;
        r.scales.resize(rows * ((cols + g - 1) / g));
        if (!o.symmetric) r.zero_points.resize(r.scales.size());
    }
    tbb::parallel_for(tbb::blocked_range<uint64_t>(0, rows), [&](const tbb::blocked_range<uint64_t>& rr) {
        quantize_rows(w, rr.begin(), rr.end(), cols, g, o.bits, o.symmetric, fixed, r);
    });
    return r;
}

std::vector<float> dequantize(const result& r, uint64_t rows, uint64_t cols) {
    std::vector<float> out(rows * cols);
    const uint64_t groups = r.group_size ? (cols + r.group_size - 1) / r.group_size : 0;
    for (uint64_t i = 0; i < rows * cols; ++i) {
        const uint64_t s = r.group_size ? (i / cols) * groups + (i % cols) / r.group_size : 0;
        const int32_t z = r.zero_points.empty() ? 0 : r.zero_points[s];
        out[i] = r.scales[s] * float(int32_t(r.q[i]) - z);
    }
    return out;
}

}  // namespace rtn
