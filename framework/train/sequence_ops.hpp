// Forward and backward passes of the language-model ops (embedding, rms_norm, causal
// attention with rotary embeddings), over rows of tokens as the CPU runtime computes them
// (cpu/sequence.hpp). Backward functions add into their outputs. Every sum keeps a fixed
// order whatever the thread count: attention's backward runs one task per (window, key/
// value head), which owns every gradient row it writes. Instantiated for float and double.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <vector>

namespace shrink::train::ops {

/// y row r = table row id(r) ([vocab, width]); `tokens` is [rows, 2] (id, position).
/// Throws std::runtime_error for an id outside [0, vocab).
template <class T>
void embedding_forward(const T* tokens, int64_t rows, const T* table, int64_t vocab, int64_t width, T* y);
template <class T>
void embedding_backward(const T* dy, const T* tokens, int64_t rows, int64_t width, T* dtable);

/// y = x / sqrt(mean(x^2) + eps) * w per row; inv (one a row) is kept for backward.
template <class T>
void rms_norm_forward(const T* x, int64_t rows, int64_t width, const T* w, double eps, T* y, std::vector<T>& inv);
template <class T>
void rms_norm_backward(const T* dy, const T* x, int64_t rows, int64_t width, const T* w, const std::vector<T>& inv, T* dx, T* dw);

/// What attention keeps from forward for backward.
template <class T>
struct attention_state {
    std::vector<int64_t> position, first;  // a row's position, and the row its window starts at
    std::vector<T> qr, kr;                 // q and k rotated
    std::vector<T> probs;                  // [rows, heads, longest window]: softmax weights
    int64_t longest = 0;
};

/// Causal self-attention of each window (positions counting up from 0), as
/// cpu::causal_attention: q [rows, heads x dim], k and v [rows, kv_heads x dim], y like q.
template <class T>
void attention_forward(const T* q, const T* k, const T* v, const T* tokens, int64_t rows, const attention_spec& a, T* y,
                       attention_state<T>& s);
template <class T>
void attention_backward(const T* dy, const T* v, int64_t rows, const attention_spec& a, const attention_state<T>& s, T* dq, T* dk,
                        T* dv);

}  // namespace shrink::train::ops
