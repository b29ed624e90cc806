// Forward and backward passes of each op, over plain batches ([rows, C, H, W] or
// [rows, features]). Backward functions add into their outputs (dx, dw, db), since a
// value read by two layers gets both gradients. Instantiated for float and double.
#pragma once

#include "model/ops.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::train::ops {

/// A conv or pooling window over [c, h, w] giving [oc, oh, ow].
struct window_geometry {
    int64_t c = 1, h = 1, w = 1, oc = 1, oh = 1, ow = 1;
    int64_t kh = 1, kw = 1, sh = 1, sw = 1, pad_top = 0, pad_left = 0, dh = 1, dw = 1;
    int64_t taps() const { return c * kh * kw; }  // a conv's K: one column of im2col
    int64_t in_plane() const { return h * w; }
    int64_t out_plane() const { return oh * ow; }
};

// y = x W^T + b; w [out, in].
template <class T>
void linear_forward(const T* x, int64_t rows, int64_t in, int64_t out, const T* w, const T* b, T* y);
template <class T>
void linear_backward(const T* dy, const T* x, int64_t rows, int64_t in, int64_t out, const T* w, T* dw, T* db, T* dx);

// Convolution (group 1) as col [taps, rows * out_plane] = im2col(x), y = W col + b.
// `col` is kept from forward to backward.
template <class T>
void conv_forward(const T* x, int64_t rows, const window_geometry& g, const T* w, const T* b, std::vector<T>& col, T* y);
template <class T>
void conv_backward(const T* dy, int64_t rows, const window_geometry& g, const T* w, const std::vector<T>& col, T* dw,
                   T* db, T* dx);

// Pooling: padding never wins a max; avg divides by the window's in-image taps unless include_pad.
template <class T>
void max_pool_forward(const T* x, int64_t rows, const window_geometry& g, T* y, std::vector<int32_t>& argmax);
template <class T>
void max_pool_backward(const T* dy, int64_t rows, const window_geometry& g, const std::vector<int32_t>& argmax, T* dx);
template <class T>
void avg_pool_forward(const T* x, int64_t rows, const window_geometry& g, bool include_pad, T* y);
template <class T>
void avg_pool_backward(const T* dy, int64_t rows, const window_geometry& g, bool include_pad, T* dx);

// Batchnorm over `channels` channels of `plane` values each. Training: the batch's mean and
// (biased) variance normalize; xhat and inv_std are kept for backward.
template <class T>
void batchnorm_batch_forward(const T* x, int64_t rows, int64_t channels, int64_t plane, const T* gamma, const T* beta,
                             double epsilon, T* y, std::vector<T>& xhat, std::vector<T>& inv_std, std::vector<T>& mean,
                             std::vector<T>& var);
template <class T>
void batchnorm_batch_backward(const T* dy, int64_t rows, int64_t channels, int64_t plane, const T* gamma,
                              const std::vector<T>& xhat, const std::vector<T>& inv_std, T* dx, T* dgamma, T* dbeta);
// The fixed form y = scale * x + shift (scale and shift trainable).
template <class T>
void affine_forward(const T* x, int64_t rows, int64_t channels, int64_t plane, const T* scale, const T* shift, T* y);
template <class T>
void affine_backward(const T* dy, const T* x, int64_t rows, int64_t channels, int64_t plane, const T* scale, T* dx,
                     T* dscale, T* dshift);

// relu, leaky_relu (alpha), sigmoid, tanh, gelu (erf form), gelu_tanh (tanh approximation), clip [alpha, beta].
template <class T>
void activation_forward(op_kind op, double alpha, double beta, const T* x, int64_t n, T* y);
template <class T>
void activation_backward(op_kind op, double alpha, double beta, const T* x, const T* y, const T* dy,
                         int64_t n, T* dx);

// Softmax or log-softmax of each row.
template <class T>
void softmax_forward(const T* x, int64_t rows, int64_t width, bool log, T* y);
template <class T>
void softmax_backward(const T* y, const T* dy, int64_t rows, int64_t width, bool log, T* dx);

}  // namespace shrink::train::ops
