// The CUDA kernels of decoder language models (model/ops.def: embedding, rms_norm,
// attention), declared for host code; the CPU's are cpu/sequence.hpp and these compute
// the same. Activations are a row per token; `tokens` is the model's input on the device,
// [id, position in its window] a row, already checked on the host (backend/tokens.hpp).
// Each launches on `stream` and returns at once; errors surface at the next synchronize.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shrink::gpu {

/// dst row r = table row id(r) of [vocab, width].
void embedding(const float* tokens, int64_t rows, const float* table, int64_t width, float* dst, cudaStream_t stream);

/// dst = src / sqrt(mean(src^2) + eps) * weight, row by row (the sum in double, as the CPU).
void rms_norm(const float* src, int64_t rows, int64_t width, const float* weight, float eps, float* dst, cudaStream_t stream);

/// Rotary embeddings in place on x ([rows, heads x dim]) at each token's position: the pair
/// (i, i + dim/2) of every head turned by position x theta^(-2i/dim), angles in double.
void rotate_heads(float* x, const float* tokens, int64_t rows, int64_t heads, int64_t dim, double theta, cudaStream_t stream);

/// Causal attention of rotated queries qr ([rows, heads x dim]) over rotated keys kr and
/// values v ([rows, kv_heads x dim]): row r attends to rows r - position(r) .. r, scores
/// q.k / sqrt(dim), softmax, weighted sum of v; dst like qr. `longest` bounds a window's
/// length (the largest position + 1): its scores sit in shared memory.
void attend(const float* qr, const float* kr, const float* v, const float* tokens, int64_t rows, int64_t heads, int64_t kv_heads,
            int64_t dim, int64_t longest, float* dst, cudaStream_t stream);

}  // namespace shrink::gpu
