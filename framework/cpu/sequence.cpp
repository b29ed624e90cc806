#include "cpu/sequence.hpp"
#include "backend/tokens.hpp"
#include "cpu/threading.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace shrink::cpu {

void embedding_rows(const float* tokens, int64_t rows, const float* table, int64_t vocab, int64_t width, float* dst) {
    check_token_ids(tokens, rows, vocab);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * width, table + int64_t(tokens[r * 2]) * width, size_t(width) * sizeof(float));
}

void rms_norm_rows(const float* src, int64_t rows, int64_t width, const float* weight, float eps, float* dst) {
#pragma omp parallel for num_threads(thread_count()) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = src + r * width;
        double sum = 0;
        for (int64_t i = 0; i < width; ++i) sum += double(x[i]) * x[i];
        const float inv = float(1.0 / std::sqrt(sum / double(width) + double(eps)));
        float* y = dst + r * width;
        for (int64_t i = 0; i < width; ++i) y[i] = x[i] * inv * weight[i];
    }
}


namespace {

/// Each query row r (rotated, [rows, heads x dim]) attends to key/value rows
/// [first[r], last[r]] of kr and v ([.., kv_heads x dim]); writes dst like q.
void attend(const float* qr, const float* kr, const float* v, int64_t rows, const attention_spec& a, const std::vector<int64_t>& first,
            const std::vector<int64_t>& last, float* dst) {
    const int64_t H = a.heads, KV = a.kv_heads, D = a.head_dim, group = H / KV;
    const float scale = float(1.0 / std::sqrt(double(D)));
#pragma omp parallel num_threads(thread_count())
    {
        std::vector<float> scores;
        std::vector<double> sum(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 4)
        for (int64_t job = 0; job < rows * H; ++job) {
            const int64_t r = job / H, h = job % H, kv = h / group, from = first[size_t(r)], to = last[size_t(r)];
            const float* qh = qr + (r * H + h) * D;
            scores.assign(size_t(to - from + 1), 0.0f);
            float top = -INFINITY;
            for (int64_t j = from; j <= to; ++j) {
                const float* kh = kr + (j * KV + kv) * D;
                float dot = 0;
                for (int64_t d = 0; d < D; ++d) dot += qh[d] * kh[d];
                scores[size_t(j - from)] = dot * scale;
                top = std::max(top, dot * scale);
            }
            double total = 0;
            for (float& s : scores) {
                s = std::exp(s - top);
                total += s;
            }
            std::fill(sum.begin(), sum.end(), 0.0);
            for (int64_t j = from; j <= to; ++j) {
                const float* vh = v + (j * KV + kv) * D;
                const double w = scores[size_t(j - from)];
                for (int64_t d = 0; d < D; ++d) sum[size_t(d)] += w * vh[d];
            }
            float* out = dst + (r * H + h) * D;
            for (int64_t d = 0; d < D; ++d) out[d] = float(sum[size_t(d)] / total);
        }
    }
}

}  // namespace

void causal_attention(const float* q, const float* k, const float* v, const float* tokens, int64_t rows, const attention_spec& a,
                      float* dst) {
    const int64_t H = a.heads, KV = a.kv_heads, D = a.head_dim;
    const std::vector<int64_t> position = token_positions(tokens, rows);
    std::vector<int64_t> first(static_cast<size_t>(rows)), last(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        first[size_t(r)] = r - position[size_t(r)];
        last[size_t(r)] = r;
    }
    std::vector<float> qr(q, q + rows * H * D), kr(k, k + rows * KV * D);
    rotate_heads(qr.data(), rows, H, D, position, a.rope_theta);
    rotate_heads(kr.data(), rows, KV, D, position, a.rope_theta);
    attend(qr.data(), kr.data(), v, rows, a, first, last, dst);
}

void cached_attention(const float* q, const float* k, const float* v, const float* tokens, int64_t rows, const attention_spec& a,
                      kv_cache::layer_cache& cache, float* dst) {
    const int64_t H = a.heads, KV = a.kv_heads, D = a.head_dim, held = int64_t(cache.keys.size()) / (KV * D);
    std::vector<int64_t> position(static_cast<size_t>(rows)), first(static_cast<size_t>(rows), 0), last(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        if (tokens[r * 2 + 1] != float(held + r))
            throw std::runtime_error("a token continuing " + std::to_string(held) + " cached ones must have position " + std::to_string(held + r) +
                                     ", not " + std::to_string(tokens[r * 2 + 1]));
        position[size_t(r)] = held + r;
        last[size_t(r)] = held + r;
    }
    std::vector<float> qr(q, q + rows * H * D);
    rotate_heads(qr.data(), rows, H, D, position, a.rope_theta);
    cache.keys.insert(cache.keys.end(), k, k + rows * KV * D);
    rotate_heads(cache.keys.data() + held * KV * D, rows, KV, D, position, a.rope_theta);
    cache.values.insert(cache.values.end(), v, v + rows * KV * D);
    attend(qr.data(), cache.keys.data(), cache.values.data(), rows, a, first, last, dst);
}

}  // namespace shrink::cpu
