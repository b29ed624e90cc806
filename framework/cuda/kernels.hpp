// The CUDA runtime's own kernels, declared for host code (no CUDA syntax here). Each one
// launches on `stream` and returns at once; errors surface at the next synchronize.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shrink::gpu {

/// An activation as the kernels apply it (the model ops of cpu::activation).
struct act {
    enum kind : int32_t { none, relu, leaky_relu, sigmoid, tanh, gelu, gelu_tanh, clip, silu } k = none;
    float alpha = 0, beta = 0;
};

/// out[i] = scale[s] * (q[i] - zero[s]), 0 where mask[i] is 0; s per group of a row of
/// `cols` (group_size 0: one scale). zero and mask may be null.
void dequantize(const int8_t* q, const float* scales, const int8_t* zeros, const uint8_t* mask, uint64_t n, uint64_t cols,
                uint64_t group_size, float* out, cudaStream_t stream);

/// x[n, c, s] = f((x + bias[c]) * bn_scale[c] + bn_shift[c]) over `batch` x `channels` x
/// `inner`; bias, bn_scale and bn_shift may each be null (then skipped).
void channel_epilogue(float* x, int64_t batch, int64_t channels, int64_t inner, const float* bias, const float* bn_scale,
                      const float* bn_shift, act f, cudaStream_t stream);

/// dst = f(src) over n floats (src == dst allowed).
void activation(const float* src, float* dst, int64_t n, act f, cudaStream_t stream);

/// dst = the value an 8-bit asymmetric quantizer (scale, zero point) gives back for src.
void fake_quantize(const float* src, float* dst, int64_t n, float scale, int32_t zero_point, cudaStream_t stream);
/// Per-token dynamic 8-bit quantization of each of `rows` rows (model.hpp, quantize_row_per_token).
void fake_quantize_rows(const float* src, float* dst, int64_t rows, int64_t width, cudaStream_t stream);

struct window2d {
    int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w;
    int64_t kh, kw, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
};

/// col[n][c*kh*kw + i*kw + j][oh*out_w + ow] for every sample (zero where the window
/// reads padding): each sample's matrix of a convolution as one product.
void im2col(const float* src, const window2d& w, float* col, cudaStream_t stream);

enum class pool_kind { max, average, average_with_pad };
void pool(const float* src, const window2d& w, pool_kind k, float* dst, cudaStream_t stream);

/// Softmax (or its log) of each of `rows` rows of `width` floats.
void softmax(const float* src, float* dst, int64_t rows, int64_t width, bool log, cudaStream_t stream);

/// dst = a op b over `batch` samples of a's per-sample dims (right-aligned, at most 4,
/// padded with 1 in front); b_strides give b's per-sample stride per dim (0 where b
/// broadcasts). op: 0 add, 1 sub, 2 mul, 3 div.
void binary(const float* a, const float* b, float* dst, int64_t batch, const int64_t dims[4], const int64_t b_strides[4],
            int64_t b_sample, int op, cudaStream_t stream);

}  // namespace shrink::gpu
