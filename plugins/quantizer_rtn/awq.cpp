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
