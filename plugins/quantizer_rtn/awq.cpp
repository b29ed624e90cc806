#include "awq.hpp"

#include "linalg.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace awq {

std::vector<float> scales_for(const std::vector<float>& mean_abs, double ratio) {
    std::vector<float> s(mean_abs.size());
    float lo = 0, hi = 0;
    for (size_t j = 0; j < s.size(); ++j) {
        s[j] = float(std::max(std::pow(double(mean_abs[j]), ratio), 1e-4));
        lo = j ? std::min(lo, s[j]) : s[j], hi = j ? std::max(hi, s[j]) : s[j];
    }
    const float norm = std::sqrt(hi * lo);
    for (float& v : s) v /= norm;
    return s;
}

double output_error(const float* w, uint64_t rows, uint64_t d, const std::vector<float>& scales, const std::vector<float>& h,
                    const rtn::options& o) {
    if (scales.size() != d || h.size() != d * d) throw std::invalid_argument("scales or Hessian of the wrong size");
    std::vector<float> ws(rows * d);
    for (uint64_t i = 0; i < rows * d; ++i) ws[i] = w[i] * scales[i % d];
    std::vector<float> dw = rtn::dequantize(rtn::quantize(ws.data(), rows, d, o), rows, d);
    for (uint64_t i = 0; i < rows * d; ++i) dw[i] = dw[i] / scales[i % d] - w[i];
    std::vector<float> t(rows * d);  // dW H
    linalg::gemm(false, false, int64_t(rows), int64_t(d), int64_t(d), 1.0f, dw.data(), int64_t(d), h.data(), int64_t(d), 0.0f, t.data(),
                 int64_t(d));
    double e = 0;
    for (uint64_t i = 0; i < rows * d; ++i) e += double(t[i]) * double(dw[i]);
    return e;
}

namespace {

struct grid {
    float scale = 0;
    int32_t zero = 0;
};

/// RTN's grid for a range [lo, hi] holding 0 (rtn_kernel.cpp's formula).
grid grid_of(float lo, float hi, const rtn::options& o) {
    const int32_t qmax = (1 << (o.bits - 1)) - 1, qmin = o.symmetric ? -qmax : -(1 << (o.bits - 1));
    if (o.symmetric) return {std::fabs(std::max(-lo, hi) / float(qmax)), 0};
    const float scale = std::fabs((hi - lo) / float((1 << o.bits) - 1));
    if (scale == 0) return {0, 0};
    const float z = float(qmin) + std::nearbyint(-lo / scale);
    return {scale, int32_t(std::min(std::max(z, float(qmin)), float(qmax)))};
}

}  // namespace

rtn::result quantize_clipped(const float* w, uint64_t rows, uint64_t d, const std::vector<float>& h, const rtn::options& o, int steps) {
    if (h.size() != d * d) throw std::invalid_argument("the Hessian is not d x d");
    if (o.gran == rtn::granularity::per_tensor) throw std::invalid_argument("clipping works per channel or per group");
    if (steps < 1) throw std::invalid_argument("the clip grid needs at least one point");
    const uint64_t g = o.gran == rtn::granularity::per_group ? std::min(o.group_size, d) : d, groups = (d + g - 1) / g;
    const int32_t qmax = (1 << (o.bits - 1)) - 1, qmin = o.symmetric ? -qmax : -(1 << (o.bits - 1));
    rtn::result r;
    r.group_size = g;
    r.q.resize(rows * d);
    r.scales.resize(rows * groups);
    if (!o.symmetric) r.zero_points.resize(rows * groups);
    linalg::parallel_for(rows, [&](uint64_t row) {
        std::vector<float> dq(g), t(g);
        std::vector<int8_t> codes(g), best_codes(g);
        for (uint64_t k = 0; k < groups; ++k) {
            const uint64_t c0 = k * g, len = std::min(g, d - c0);
            const float* wk = w + row * d + c0;
            float lo = 0, hi = 0;
            for (uint64_t j = 0; j < len; ++j) lo = std::min(lo, wk[j]), hi = std::max(hi, wk[j]);
            double best = -1;
            grid chosen;
            for (int i = 0; i < steps; ++i) {
                const float c = 1.0f - 0.5f * float(i) / float(steps);
                const grid gr = grid_of(lo * c, hi * c, o);
                const float inv = gr.scale == 0 ? 0.0f : 1.0f / gr.scale;
                for (uint64_t j = 0; j < len; ++j) {
                    const float v = std::min(std::max(std::nearbyint(wk[j] * inv) + float(gr.zero), float(qmin)), float(qmax));
                    codes[j] = int8_t(v);
                    dq[j] = gr.scale * (v - float(gr.zero)) - wk[j];
                }
                double e = 0;  // dq H_gg dq^T
                for (uint64_t a = 0; a < len; ++a) {
                    const float* ha = h.data() + (c0 + a) * d + c0;
                    float s = 0;
                    for (uint64_t b = 0; b < len; ++b) s += ha[b] * dq[b];
                    e += double(s) * double(dq[a]);
                }
                if (best < 0 || e < best) best = e, chosen = gr, best_codes.assign(codes.begin(), codes.begin() + int64_t(len));
            }
            std::copy(best_codes.begin(), best_codes.begin() + int64_t(len), r.q.begin() + int64_t(row * d + c0));
            r.scales[row * groups + k] = chosen.scale;
            if (!o.symmetric) r.zero_points[row * groups + k] = int8_t(chosen.zero);
        }
    });
    return r;
}

search_result search(const std::vector<member>& group, uint64_t d, const std::vector<float>& h, const std::vector<float>& mean_abs,
                     const rtn::options& o, int grid) {
    if (grid < 1) throw std::invalid_argument("the grid needs at least one point");
    search_result r;
    for (int i = 0; i < grid; ++i) {
        const std::vector<float> s = scales_for(mean_abs, double(i) / grid);
        double e = 0;
        for (const member& m : group) e += output_error(m.w, m.rows, d, s, h, o);
        r.errors.push_back(e);
        if (e < r.errors[size_t(r.best)]) r.best = i;
    }
    r.ratio = double(r.best) / grid;
    r.scales = scales_for(mean_abs, r.ratio);
    return r;
}

}  // namespace awq
