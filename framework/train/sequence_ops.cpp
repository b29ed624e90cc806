#include "train/sequence_ops.hpp"

#include "cpu/sequence.hpp"
#include "train/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace shrink::train::ops {

template <class T>
void embedding_forward(const T* tokens, int64_t rows, const T* table, int64_t vocab, int64_t width, T* y) {
    for (int64_t r = 0; r < rows; ++r) {
        const T id = tokens[r * 2];
        if (!(id >= 0 && id < T(vocab)) || id != std::floor(id))
            throw std::runtime_error("token id " + std::to_string(double(id)) + " (row " + std::to_string(r) +
                                     ") is not in the vocabulary of " + std::to_string(vocab));
        std::copy_n(table + int64_t(id) * width, width, y + r * width);
    }
}

template <class T>
void embedding_backward(const T* dy, const T* tokens, int64_t rows, int64_t width, T* dtable) {
    // Serial over rows: two rows of one token add into the same table row, in row order.
    for (int64_t r = 0; r < rows; ++r) {
        T* row = dtable + int64_t(tokens[r * 2]) * width;
        for (int64_t i = 0; i < width; ++i) row[i] += dy[r * width + i];
    }
}

template <class T>
void rms_norm_forward(const T* x, int64_t rows, int64_t width, const T* w, double eps, T* y, std::vector<T>& inv) {
    inv.resize(size_t(rows));
    each(rows, [&](int64_t r) {
        const T* xr = x + r * width;
        double sum = 0;
        for (int64_t i = 0; i < width; ++i) sum += double(xr[i]) * double(xr[i]);
        const T s = T(1.0 / std::sqrt(sum / double(width) + eps));
        inv[size_t(r)] = s;
        for (int64_t i = 0; i < width; ++i) y[r * width + i] = xr[i] * s * w[i];
    });
}

template <class T>
void rms_norm_backward(const T* dy, const T* x, int64_t rows, int64_t width, const T* w, const std::vector<T>& inv, T* dx, T* dw) {
    // y_i = w_i x_i s, s = (mean(x^2) + eps)^(-1/2): dx_j = s w_j dy_j - s^3 x_j / n * sum_i dy_i w_i x_i.
    each(rows, [&](int64_t r) {
        const T* xr = x + r * width;
        const T* g = dy + r * width;
        const double s = double(inv[size_t(r)]);
        double dot = 0;
        for (int64_t i = 0; i < width; ++i) dot += double(g[i]) * double(w[i]) * double(xr[i]);
        const double k = s * s * s * dot / double(width);
        for (int64_t i = 0; i < width; ++i) dx[r * width + i] += T(s * double(w[i]) * double(g[i]) - k * double(xr[i]));
    });
    // The weight's gradient sums over rows: one task per column, rows in order.
    each(width, [&](int64_t i) {
        double sum = 0;
        for (int64_t r = 0; r < rows; ++r) sum += double(dy[r * width + i]) * double(x[r * width + i]) * double(inv[size_t(r)]);
        dw[i] += T(sum);
    });
}


template <class T>
void attention_forward(const T* q, const T* k, const T* v, const T* tokens, int64_t rows, const attention_spec& a, T* y,
                       attention_state<T>& s) {
    const int64_t H = a.heads, KV = a.kv_heads, D = a.head_dim, group = H / KV;
    s.position.assign(size_t(rows), 0);
    s.first.assign(size_t(rows), 0);
    s.longest = 0;
    for (int64_t r = 0; r < rows; ++r) {
        const T p = tokens[r * 2 + 1];
        if (p != 0 && !(r > 0 && p == T(s.position[size_t(r - 1)] + 1)))
            throw std::runtime_error("token positions must count up from 0 in each window: row " + std::to_string(r) +
                                     " has position " + std::to_string(double(p)));
        s.position[size_t(r)] = int64_t(p);
        s.first[size_t(r)] = r - int64_t(p);
        s.longest = std::max(s.longest, int64_t(p) + 1);
    }
    s.qr.assign(q, q + rows * H * D);
    s.kr.assign(k, k + rows * KV * D);
    cpu::rotate_heads(s.qr.data(), rows, H, D, s.position, a.rope_theta);
    cpu::rotate_heads(s.kr.data(), rows, KV, D, s.position, a.rope_theta);
    s.probs.assign(size_t(rows * H * s.longest), T(0));
    const double scale = 1.0 / std::sqrt(double(D));
    each(rows * H, [&](int64_t job) {
        const int64_t r = job / H, h = job % H, kv = h / group, from = s.first[size_t(r)];
        const T* qh = s.qr.data() + (r * H + h) * D;
        T* p = s.probs.data() + job * s.longest;
        double top = -INFINITY;
        for (int64_t j = from; j <= r; ++j) {
            const T* kh = s.kr.data() + (j * KV + kv) * D;
            double dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += double(qh[d]) * double(kh[d]);
            p[j - from] = T(dot * scale);
            top = std::max(top, dot * scale);
        }
        double total = 0;
        for (int64_t j = from; j <= r; ++j) total += std::exp(double(p[j - from]) - top);
        for (int64_t j = from; j <= r; ++j) p[j - from] = T(std::exp(double(p[j - from]) - top) / total);
        T* out = y + (r * H + h) * D;
        for (int64_t d = 0; d < D; ++d) {
            double sum = 0;
            for (int64_t j = from; j <= r; ++j) sum += double(p[j - from]) * double(v[(j * KV + kv) * D + d]);
            out[d] = T(sum);
        }
    });
}

template <class T>
void attention_backward(const T* dy, const T* v, int64_t rows, const attention_spec& a, const attention_state<T>& s, T* dq, T* dk,
                        T* dv) {
    const int64_t H = a.heads, KV = a.kv_heads, D = a.head_dim, group = H / KV;
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<int64_t> starts;  // the first row of each window
    for (int64_t r = 0; r < rows; ++r)
        if (s.position[size_t(r)] == 0) starts.push_back(r);
    std::vector<T> dqr(size_t(rows * H * D), T(0)), dkr(size_t(rows * KV * D), T(0));
    const int64_t windows = int64_t(starts.size());
    // A task owns the rows of one window for one key/value head: the gradients of its
    // keys and values, and of the queries of the heads sharing them.
    each(windows * KV, [&](int64_t task) {
        const int64_t w = task / KV, kv = task % KV, from = starts[size_t(w)];
        const int64_t to = w + 1 < windows ? starts[size_t(w + 1)] : rows;
        std::vector<double> dp(size_t(s.longest));
        for (int64_t r = from; r < to; ++r)
            for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
                const T* p = s.probs.data() + (r * H + h) * s.longest;
                const T* g = dy + (r * H + h) * D;
                double weighted = 0;
                for (int64_t j = from; j <= r; ++j) {
                    const T* vj = v + (j * KV + kv) * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d) dot += double(g[d]) * double(vj[d]);
                    dp[size_t(j - from)] = dot;
                    weighted += double(p[j - from]) * dot;
                    T* dvj = dv + (j * KV + kv) * D;
                    for (int64_t d = 0; d < D; ++d) dvj[d] += p[j - from] * g[d];
                }
                const T* qh = s.qr.data() + (r * H + h) * D;
                T* dqh = dqr.data() + (r * H + h) * D;
                for (int64_t j = from; j <= r; ++j) {
                    const T ds = T(double(p[j - from]) * (dp[size_t(j - from)] - weighted) * scale);
                    const T* kj = s.kr.data() + (j * KV + kv) * D;
                    T* dkj = dkr.data() + (j * KV + kv) * D;
                    for (int64_t d = 0; d < D; ++d) {
                        dqh[d] += ds * kj[d];
                        dkj[d] += ds * qh[d];
                    }
                }
            }
    });
    cpu::rotate_heads(dqr.data(), rows, H, D, s.position, a.rope_theta, -1);
    cpu::rotate_heads(dkr.data(), rows, KV, D, s.position, a.rope_theta, -1);
    each_element(rows * H * D, [&](int64_t i) { dq[i] += dqr[size_t(i)]; });
    each_element(rows * KV * D, [&](int64_t i) { dk[i] += dkr[size_t(i)]; });
}

#define SHRINK_SEQUENCE_OPS(T)                                                                                                 \
    template void embedding_forward<T>(const T*, int64_t, const T*, int64_t, int64_t, T*);                                     \
    template void embedding_backward<T>(const T*, const T*, int64_t, int64_t, T*);                                             \
    template void rms_norm_forward<T>(const T*, int64_t, int64_t, const T*, double, T*, std::vector<T>&);                      \
    template void rms_norm_backward<T>(const T*, const T*, int64_t, int64_t, const T*, const std::vector<T>&, T*, T*);         \
    template void attention_forward<T>(const T*, const T*, const T*, const T*, int64_t, const attention_spec&, T*,            \
                                       attention_state<T>&);                                                                  \
    template void attention_backward<T>(const T*, const T*, int64_t, const attention_spec&, const attention_state<T>&, T*, T*, \
                                        T*);
SHRINK_SEQUENCE_OPS(float)
SHRINK_SEQUENCE_OPS(double)

}  // namespace shrink::train::ops
