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

// The hot loops are cloned for AVX-512 and AVX2 and dispatched at load time, so one
// portable binary still runs at vector speed on the machines we have.
#define RTN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

RTN_CLONES params_of_group range_of(const float* x, uint64_t n, int bits, bool symmetric) {
    const int32_t qmax = (1 << (bits - 1)) - 1;
    if (symmetric) {
        float m = 0;
        for (uint64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
        return {m / float(qmax), 0};
    }
    float lo = 0, hi = 0;  // the range always contains 0
    for (uint64_t i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    const float scale = (hi - lo) / float((1 << bits) - 1);
    if (scale == 0) return {0, 0};
    const int32_t qmin = -(1 << (bits - 1));
    const int32_t zero = std::clamp(qmin + int32_t(std::lrint(-lo / scale)), qmin, qmax);
    return {scale, zero};
}

RTN_CLONES void round_group(const float* x, int8_t* q, uint64_t n, params_of_group p, int bits, bool symmetric) {
    const int32_t qmax = (1 << (bits - 1)) - 1;
    const float lo = symmetric ? float(-qmax) : float(-(1 << (bits - 1)));
    const float hi = float(qmax);
    if (p.scale == 0) {
        std::fill(q, q + n, int8_t(p.zero));
        return;
    }
    const float inv = 1.0f / p.scale;
    const float zero = float(p.zero);
    for (uint64_t i = 0; i < n; ++i) q[i] = int8_t(std::lrint(std::clamp(x[i] * inv + zero, lo, hi)));
}

}  // namespace

result quantize(const float* w, uint64_t rows, uint64_t cols, const options& o) {
    result r;
    r.q.resize(rows * cols);
    if (o.gran == granularity::per_tensor) {
        const params_of_group p = range_of(w, rows * cols, o.bits, o.symmetric);
        r.group_size = 0;
        r.scales = {p.scale};
        if (!o.symmetric) r.zero_points = {int8_t(p.zero)};
        tbb::parallel_for(tbb::blocked_range<uint64_t>(0, rows), [&](const tbb::blocked_range<uint64_t>& rr) {
            for (uint64_t row = rr.begin(); row < rr.end(); ++row)
                round_group(w + row * cols, r.q.data() + row * cols, cols, p, o.bits, o.symmetric);
        });
        return r;
    }
    const uint64_t g = o.gran == granularity::per_channel ? cols : std::min<uint64_t>(o.group_size, cols);
    const uint64_t groups = (cols + g - 1) / g;
    r.group_size = g;
    r.scales.resize(rows * groups);
    if (!o.symmetric) r.zero_points.resize(rows * groups);
    tbb::parallel_for(tbb::blocked_range<uint64_t>(0, rows), [&](const tbb::blocked_range<uint64_t>& rr) {
        for (uint64_t row = rr.begin(); row < rr.end(); ++row)
            for (uint64_t k = 0; k < groups; ++k) {
                const uint64_t start = row * cols + k * g;
                const uint64_t n = std::min(g, cols - k * g);
                const params_of_group p = range_of(w + start, n, o.bits, o.symmetric);
                r.scales[row * groups + k] = p.scale;
                if (!o.symmetric) r.zero_points[row * groups + k] = int8_t(p.zero);
                round_group(w + start, r.q.data() + start, n, p, o.bits, o.symmetric);
            }
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
