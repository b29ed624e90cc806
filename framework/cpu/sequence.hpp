// The CPU kernels of decoder language models (model/ops.def: embedding, rms_norm,
// attention). Their activations are one row per token; the model's input gives each token
// as [id, position in its window] (docs/language-models.md).
#pragma once

#include "cpu/threading.hpp"
#include "model/model.hpp"

#include <cmath>

#include <cstdint>
#include <vector>

namespace shrink::cpu {

/// dst row r = table row id(r) of [vocab, width]. Throws std::runtime_error for an id that
/// is not an integer in [0, vocab).
void embedding_rows(const float* tokens, int64_t rows, const float* table, int64_t vocab, int64_t width, float* dst);

/// dst = src / sqrt(mean(src^2) + eps) * weight, row by row (the mean in double).
void rms_norm_rows(const float* src, int64_t rows, int64_t width, const float* weight, float eps, float* dst);

/// Rotary embeddings: rotates each head of x ([rows, heads x dim]) in place as
/// transformers' rotate_half does, the pair (i, i + dim/2) by position[r] x
/// theta^(-2i/dim). sign -1 rotates back: the rotation's transpose, which a gradient goes
/// through. For float (the runtime) and double (gradient checks).
template <class T>
void rotate_heads(T* x, int64_t rows, int64_t heads, int64_t dim, const std::vector<int64_t>& position, double theta, double sign = 1) {
    const int64_t half = dim / 2;
    std::vector<double> inv_freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = std::pow(theta, -2.0 * double(i) / double(dim));
#pragma omp parallel for num_threads(thread_count()) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < half; ++i) {
            const double angle = double(position[size_t(r)]) * inv_freq[size_t(i)];
            const T c = T(std::cos(angle)), s = T(sign * std::sin(angle));
            for (int64_t h = 0; h < heads; ++h) {
                T* head = x + (r * heads + h) * dim;
                const T a = head[i], b = head[i + half];
                head[i] = a * c - b * s;
                head[i + half] = b * c + a * s;
            }
        }
    }
}

/// Causal self-attention of each window of tokens (a window is a run of rows whose
/// positions count 0, 1, 2, ...; a token attends to its window's tokens up to itself):
/// rotary embeddings on q and k at each token's position, scores q.k / sqrt(head_dim),
/// softmax, the weighted sum of v. q is [rows, heads x head_dim], k and v are
/// [rows, kv_heads x head_dim]; dst is like q. Throws std::runtime_error when the
/// positions do not count up from 0 within each window.
void causal_attention(const float* q, const float* k, const float* v, const float* tokens, int64_t rows, const attention_spec& a,
                      float* dst);

/// What a decoder's attention layers computed for the tokens of one sequence so far, so
/// that generating a token costs one row per layer instead of the whole window again.
struct kv_cache {
    struct layer_cache {
        std::vector<float> keys, values;  // [positions, kv_heads x head_dim]; keys rotated
    };
    std::vector<layer_cache> layers;  // by attention layer, in graph order
    int64_t positions = 0;            // tokens held
};

/// causal_attention for `rows` tokens of one window that continue `cache`: their positions
/// must count up from the rows `cache` holds; their keys and values are appended to it.
void cached_attention(const float* q, const float* k, const float* v, const float* tokens, int64_t rows, const attention_spec& a,
                      kv_cache::layer_cache& cache, float* dst);

}  // namespace shrink::cpu
