#include "train/ops.hpp"

#include "train/gemm.hpp"
#include "train/parallel.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace shrink::train::ops {

namespace {

/// The input row a window tap reads, or -1 in the padding.
inline int64_t tap(int64_t out, int64_t stride, int64_t pad, int64_t k, int64_t dilation, int64_t extent) {
    const int64_t at = out * stride - pad + k * dilation;
    return at >= 0 && at < extent ? at : -1;
}

}  // namespace

template <class T>
void linear_forward(const T* x, int64_t rows, int64_t in, int64_t out, const T* w, const T* b, T* y) {
    gemm(x, false, w, true, y, rows, out, in);
    if (b)
        each(rows, [&](int64_t r) {
            for (int64_t j = 0; j < out; ++j) y[r * out + j] += b[j];
        });
}

template <class T>
void linear_backward(const T* dy, const T* x, int64_t rows, int64_t in, int64_t out, const T* w, T* dw, T* db, T* dx) {
    std::vector<T> tmp(size_t(std::max(in * out, rows * in)));
    gemm(dy, true, x, false, tmp.data(), out, in, rows);
    each_element(in * out, [&](int64_t i) { dw[i] += tmp[size_t(i)]; });
    if (db)
        each(out, [&](int64_t j) {
            T s = 0;
            for (int64_t r = 0; r < rows; ++r) s += dy[r * out + j];
            db[j] += s;
        });
    if (!dx) return;
    gemm(dy, false, w, false, tmp.data(), rows, in, out);
    each_element(rows * in, [&](int64_t i) { dx[i] += tmp[size_t(i)]; });
}

template <class T>
void conv_forward(const T* x, int64_t rows, const window_geometry& g, const T* w, const T* b, std::vector<T>& col, T* y) {
    const int64_t K = g.taps(), P = g.out_plane(), NP = rows * P;
    col.resize(size_t(K * NP));
    // One row of col per tap (c, i, j): every output position of every sample.
    each(K, [&](int64_t t) {
        const int64_t c = t / (g.kh * g.kw), i = t / g.kw % g.kh, j = t % g.kw;
        T* dst = col.data() + t * NP;
        for (int64_t n = 0; n < rows; ++n) {
            const T* plane = x + (n * g.c + c) * g.in_plane();
            for (int64_t oy = 0; oy < g.oh; ++oy) {
                const int64_t iy = tap(oy, g.sh, g.pad_top, i, g.dh, g.h);
                for (int64_t ox = 0; ox < g.ow; ++ox) {
                    const int64_t ix = tap(ox, g.sw, g.pad_left, j, g.dw, g.w);
                    *dst++ = iy >= 0 && ix >= 0 ? plane[iy * g.w + ix] : T(0);
                }
            }
        }
    });
    std::vector<T> out(size_t(g.oc * NP));
    gemm(w, false, col.data(), false, out.data(), g.oc, NP, K);
    each(rows * g.oc, [&](int64_t nc) {
        const int64_t n = nc / g.oc, oc = nc % g.oc;
        const T* src = out.data() + oc * NP + n * P;
        T* dst = y + nc * P;
        const T bias = b ? b[oc] : T(0);
        for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + bias;
    });
}

template <class T>
void conv_backward(const T* dy, int64_t rows, const window_geometry& g, const T* w, const std::vector<T>& col, T* dw,
                   T* db, T* dx) {
    const int64_t K = g.taps(), P = g.out_plane(), NP = rows * P;
    std::vector<T> dyt(size_t(g.oc * NP));  // [oc, rows * P], the layout col's product has
    each(rows * g.oc, [&](int64_t nc) {
        const int64_t n = nc / g.oc, oc = nc % g.oc;
        std::copy_n(dy + nc * P, P, dyt.begin() + oc * NP + n * P);
    });
    std::vector<T> tmp(size_t(g.oc * K));
    gemm(dyt.data(), false, col.data(), true, tmp.data(), g.oc, K, NP);
    each_element(g.oc * K, [&](int64_t i) { dw[i] += tmp[size_t(i)]; });
    if (db)
        each(g.oc, [&](int64_t oc) {
            T s = 0;
            for (int64_t i = 0; i < NP; ++i) s += dyt[size_t(oc * NP + i)];
            db[oc] += s;
        });
    if (!dx) return;
    std::vector<T> dcol(size_t(K * NP));
    gemm(w, true, dyt.data(), false, dcol.data(), K, NP, g.oc);
    // col2im, one input plane per task: each dx element is written by one task only.
    each(rows * g.c, [&](int64_t nc) {
        const int64_t n = nc / g.c, c = nc % g.c;
        T* plane = dx + nc * g.in_plane();
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                const T* src = dcol.data() + ((c * g.kh + i) * g.kw + j) * NP + n * P;
                for (int64_t oy = 0; oy < g.oh; ++oy) {
                    const int64_t iy = tap(oy, g.sh, g.pad_top, i, g.dh, g.h);
                    if (iy < 0) continue;
                    for (int64_t ox = 0; ox < g.ow; ++ox) {
                        const int64_t ix = tap(ox, g.sw, g.pad_left, j, g.dw, g.w);
                        if (ix >= 0) plane[iy * g.w + ix] += src[oy * g.ow + ox];
                    }
                }
            }
    });
}

template <class T>
void max_pool_forward(const T* x, int64_t rows, const window_geometry& g, T* y, std::vector<int32_t>& argmax) {
    argmax.resize(size_t(rows * g.c * g.out_plane()));
    if (g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.pad_top == 0 && g.pad_left == 0 && g.oh * 2 <= g.h &&
        g.ow * 2 <= g.w) {
        // The common 2x2 window, without the general path's padding checks.
        each(rows * g.c, [&](int64_t nc) {
            const T* plane = x + nc * g.in_plane();
            for (int64_t oy = 0; oy < g.oh; ++oy)
                for (int64_t ox = 0; ox < g.ow; ++ox) {
                    int32_t at = int32_t(2 * oy * g.w + 2 * ox);
                    for (int32_t cand : {at + 1, at + int32_t(g.w), at + int32_t(g.w) + 1})
                        if (plane[cand] > plane[at]) at = cand;
                    const int64_t o = nc * g.out_plane() + oy * g.ow + ox;
                    y[o] = plane[at];
                    argmax[size_t(o)] = at;
                }
        });
        return;
    }
    each(rows * g.c, [&](int64_t nc) {
        const T* plane = x + nc * g.in_plane();
        for (int64_t oy = 0; oy < g.oh; ++oy)
            for (int64_t ox = 0; ox < g.ow; ++ox) {
                T best = -std::numeric_limits<T>::infinity();
                int32_t at = -1;
                for (int64_t i = 0; i < g.kh; ++i) {
                    const int64_t iy = tap(oy, g.sh, g.pad_top, i, 1, g.h);
                    for (int64_t j = 0; iy >= 0 && j < g.kw; ++j) {
                        const int64_t ix = tap(ox, g.sw, g.pad_left, j, 1, g.w);
                        if (ix >= 0 && (at < 0 || plane[iy * g.w + ix] > best)) {
                            best = plane[iy * g.w + ix];
                            at = int32_t(iy * g.w + ix);
                        }
                    }
                }
                const int64_t o = nc * g.out_plane() + oy * g.ow + ox;
                y[o] = best;
                argmax[size_t(o)] = at;
            }
    });
}

template <class T>
void max_pool_backward(const T* dy, int64_t rows, const window_geometry& g, const std::vector<int32_t>& argmax, T* dx) {
    each(rows * g.c, [&](int64_t nc) {
        T* plane = dx + nc * g.in_plane();
        for (int64_t p = 0; p < g.out_plane(); ++p) {
            const int64_t o = nc * g.out_plane() + p;
            if (argmax[size_t(o)] >= 0) plane[argmax[size_t(o)]] += dy[o];
        }
    });
}

namespace {

template <class T, class F>
void avg_windows(int64_t rows, const window_geometry& g, bool include_pad, F&& f) {
    each(rows * g.c, [&](int64_t nc) {
        for (int64_t oy = 0; oy < g.oh; ++oy)
            for (int64_t ox = 0; ox < g.ow; ++ox) {
                int64_t inside = 0;
                for (int64_t i = 0; i < g.kh; ++i)
                    for (int64_t j = 0; j < g.kw; ++j)
                        inside += tap(oy, g.sh, g.pad_top, i, 1, g.h) >= 0 && tap(ox, g.sw, g.pad_left, j, 1, g.w) >= 0;
                const T divisor = T(include_pad ? g.kh * g.kw : inside);
                for (int64_t i = 0; i < g.kh; ++i) {
                    const int64_t iy = tap(oy, g.sh, g.pad_top, i, 1, g.h);
                    for (int64_t j = 0; iy >= 0 && j < g.kw; ++j) {
                        const int64_t ix = tap(ox, g.sw, g.pad_left, j, 1, g.w);
                        if (ix >= 0) f(nc * g.in_plane() + iy * g.w + ix, nc * g.out_plane() + oy * g.ow + ox, divisor);
                    }
                }
            }
    });
}

}  // namespace

template <class T>
void avg_pool_forward(const T* x, int64_t rows, const window_geometry& g, bool include_pad, T* y) {
    std::fill(y, y + rows * g.c * g.out_plane(), T(0));
    avg_windows<T>(rows, g, include_pad, [&](int64_t i, int64_t o, T divisor) { y[o] += x[i] / divisor; });
}

template <class T>
void avg_pool_backward(const T* dy, int64_t rows, const window_geometry& g, bool include_pad, T* dx) {
    avg_windows<T>(rows, g, include_pad, [&](int64_t i, int64_t o, T divisor) { dx[i] += dy[o] / divisor; });
}

template <class T>
void batchnorm_batch_forward(const T* x, int64_t rows, int64_t channels, int64_t plane, const T* gamma, const T* beta,
                             double epsilon, T* y, std::vector<T>& xhat, std::vector<T>& inv_std, std::vector<T>& mean,
                             std::vector<T>& var) {
    xhat.resize(size_t(rows * channels * plane));
    inv_std.resize(size_t(channels));
    mean.resize(size_t(channels));
    var.resize(size_t(channels));
    const double count = double(rows * plane);
    each(channels, [&](int64_t c) {
        // Each plane sums in T (vectorized), planes add up in double.
        double s = 0, s2 = 0;
        for (int64_t n = 0; n < rows; ++n) {
            const T* v = x + (n * channels + c) * plane;
            T part = 0;
            for (int64_t p = 0; p < plane; ++p) part += v[p];
            s += double(part);
        }
        const double mu = s / count;
        const T m = T(mu);
        for (int64_t n = 0; n < rows; ++n) {
            const T* v = x + (n * channels + c) * plane;
            T part = 0;
            for (int64_t p = 0; p < plane; ++p) part += (v[p] - m) * (v[p] - m);
            s2 += double(part);
        }
        const double variance = s2 / count;
        const T inv = T(1.0 / std::sqrt(variance + epsilon));
        mean[size_t(c)] = T(mu);
        var[size_t(c)] = T(variance);
        inv_std[size_t(c)] = inv;
        for (int64_t n = 0; n < rows; ++n) {
            const int64_t at = (n * channels + c) * plane;
            for (int64_t p = 0; p < plane; ++p) {
                const T h = (x[at + p] - T(mu)) * inv;
                xhat[size_t(at + p)] = h;
                y[at + p] = gamma[c] * h + beta[c];
            }
        }
    });
}

template <class T>
void batchnorm_batch_backward(const T* dy, int64_t rows, int64_t channels, int64_t plane, const T* gamma,
                              const std::vector<T>& xhat, const std::vector<T>& inv_std, T* dx, T* dgamma, T* dbeta) {
    const double count = double(rows * plane);
    each(channels, [&](int64_t c) {
        double sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t n = 0; n < rows; ++n) {
            const int64_t at = (n * channels + c) * plane;
            T a = 0, b = 0;
            for (int64_t p = 0; p < plane; ++p) {
                a += dy[at + p];
                b += dy[at + p] * xhat[size_t(at + p)];
            }
            sum_dy += double(a);
            sum_dy_xhat += double(b);
        }
        dgamma[c] += T(sum_dy_xhat);
        dbeta[c] += T(sum_dy);
        if (!dx) return;
        const T k = gamma[c] * inv_std[size_t(c)];
        const T mean_dy = T(sum_dy / count), mean_dy_xhat = T(sum_dy_xhat / count);
        for (int64_t n = 0; n < rows; ++n) {
            const int64_t at = (n * channels + c) * plane;
            for (int64_t p = 0; p < plane; ++p)
                dx[at + p] += k * (dy[at + p] - mean_dy - xhat[size_t(at + p)] * mean_dy_xhat);
        }
    });
}

template <class T>
void affine_forward(const T* x, int64_t rows, int64_t channels, int64_t plane, const T* scale, const T* shift, T* y) {
    each(rows * channels, [&](int64_t nc) {
        const int64_t c = nc % channels;
        for (int64_t p = 0; p < plane; ++p) y[nc * plane + p] = scale[c] * x[nc * plane + p] + shift[c];
    });
}

template <class T>
void affine_backward(const T* dy, const T* x, int64_t rows, int64_t channels, int64_t plane, const T* scale, T* dx,
                     T* dscale, T* dshift) {
    each(channels, [&](int64_t c) {
        T ds = 0, dt = 0;
        for (int64_t n = 0; n < rows; ++n) {
            const int64_t at = (n * channels + c) * plane;
            for (int64_t p = 0; p < plane; ++p) {
                ds += dy[at + p] * x[at + p];
                dt += dy[at + p];
                if (dx) dx[at + p] += scale[c] * dy[at + p];
            }
        }
        dscale[c] += ds;
        dshift[c] += dt;
    });
}

// GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
constexpr double gelu_beta = 0.7978845608028654, gelu_kappa = 0.044715;
template <class T>
T gelu_tanh_inner(T x) {
    return T(gelu_beta) * (x + T(gelu_kappa) * x * x * x);
}

/// activation_forward and _backward refuse an op that is no activation.
[[noreturn]] void not_an_activation(op_kind op) { throw std::logic_error(std::string("not an activation: ") + op_of(op).name); }

template <class T>
void activation_forward(op_kind op, double alpha, double beta, const T* x, int64_t n, T* y) {
    const T a = T(alpha), b = T(beta);
    switch (op) {
        case op_kind::relu: return each_element(n, [&](int64_t i) { y[i] = x[i] > 0 ? x[i] : T(0); });
        case op_kind::leaky_relu: return each_element(n, [&](int64_t i) { y[i] = x[i] > 0 ? x[i] : a * x[i]; });
        case op_kind::sigmoid: return each_element(n, [&](int64_t i) { y[i] = T(1) / (T(1) + std::exp(-x[i])); });
        case op_kind::tanh: return each_element(n, [&](int64_t i) { y[i] = std::tanh(x[i]); });
        case op_kind::gelu:
            return each_element(n, [&](int64_t i) { y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(M_SQRT1_2))); });
        case op_kind::gelu_tanh:
            return each_element(n, [&](int64_t i) { y[i] = T(0.5) * x[i] * (T(1) + std::tanh(gelu_tanh_inner(x[i]))); });
        case op_kind::clip: return each_element(n, [&](int64_t i) { y[i] = std::clamp(x[i], a, b); });
        case op_kind::silu: return each_element(n, [&](int64_t i) { y[i] = x[i] / (T(1) + std::exp(-x[i])); });
        default: break;  // not an activation: refused below
    }
    not_an_activation(op);
}

template <class T>
void activation_backward(op_kind op, double alpha, double beta, const T* x, const T* y, const T* dy, int64_t n, T* dx) {
    const T a = T(alpha), b = T(beta);
    switch (op) {
        case op_kind::relu: return each_element(n, [&](int64_t i) { dx[i] += x[i] > 0 ? dy[i] : T(0); });
        case op_kind::leaky_relu: return each_element(n, [&](int64_t i) { dx[i] += x[i] > 0 ? dy[i] : a * dy[i]; });
        case op_kind::sigmoid: return each_element(n, [&](int64_t i) { dx[i] += dy[i] * y[i] * (T(1) - y[i]); });
        case op_kind::tanh: return each_element(n, [&](int64_t i) { dx[i] += dy[i] * (T(1) - y[i] * y[i]); });
        case op_kind::gelu:
            return each_element(n, [&](int64_t i) {
                const T cdf = T(0.5) * (T(1) + std::erf(x[i] * T(M_SQRT1_2)));
                const T pdf = std::exp(T(-0.5) * x[i] * x[i]) * T(0.3989422804014327);
                dx[i] += dy[i] * (cdf + x[i] * pdf);
            });
        case op_kind::gelu_tanh:
            return each_element(n, [&](int64_t i) {
                const T t = std::tanh(gelu_tanh_inner(x[i]));
                const T inner_grad = T(gelu_beta) * (T(1) + T(3 * gelu_kappa) * x[i] * x[i]);
                dx[i] += dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * x[i] * (T(1) - t * t) * inner_grad);
            });
        // A clipped value passes no gradient (the same convention as relu at 0).
        case op_kind::clip: return each_element(n, [&](int64_t i) { dx[i] += x[i] > a && x[i] < b ? dy[i] : T(0); });
        case op_kind::silu:  // d/dx x s(x) = s(x) (1 + x (1 - s(x)))
            return each_element(n, [&](int64_t i) {
                const T sig = T(1) / (T(1) + std::exp(-x[i]));
                dx[i] += dy[i] * sig * (T(1) + x[i] * (T(1) - sig));
            });
        default: break;  // not an activation: refused below
    }
    not_an_activation(op);
}

template <class T>
void softmax_forward(const T* x, int64_t rows, int64_t width, bool log, T* y) {
    each(rows, [&](int64_t r) {
        const T* z = x + r * width;
        T* out = y + r * width;
        const T top = *std::max_element(z, z + width);
        double sum = 0;
        for (int64_t c = 0; c < width; ++c) sum += std::exp(double(z[c] - top));
        const double lse = std::log(sum);
        for (int64_t c = 0; c < width; ++c) out[c] = log ? T(double(z[c] - top) - lse) : T(std::exp(double(z[c] - top) - lse));
    });
}

template <class T>
void softmax_backward(const T* y, const T* dy, int64_t rows, int64_t width, bool log, T* dx) {
    each(rows, [&](int64_t r) {
        const T* out = y + r * width;
        const T* g = dy + r * width;
        T* d = dx + r * width;
        double s = 0;
        if (log) {
            for (int64_t c = 0; c < width; ++c) s += double(g[c]);
            for (int64_t c = 0; c < width; ++c) d[c] += g[c] - T(std::exp(double(out[c])) * s);
        } else {
            for (int64_t c = 0; c < width; ++c) s += double(g[c]) * double(out[c]);
            for (int64_t c = 0; c < width; ++c) d[c] += out[c] * (g[c] - T(s));
        }
    });
}

#define SHRINK_TRAIN_OPS(T)                                                                                            \
    template void linear_forward<T>(const T*, int64_t, int64_t, int64_t, const T*, const T*, T*);                    \
    template void linear_backward<T>(const T*, const T*, int64_t, int64_t, int64_t, const T*, T*, T*, T*);           \
    template void conv_forward<T>(const T*, int64_t, const window_geometry&, const T*, const T*, std::vector<T>&, T*); \
    template void conv_backward<T>(const T*, int64_t, const window_geometry&, const T*, const std::vector<T>&, T*, T*, \
                                   T*);                                                                              \
    template void max_pool_forward<T>(const T*, int64_t, const window_geometry&, T*, std::vector<int32_t>&);         \
    template void max_pool_backward<T>(const T*, int64_t, const window_geometry&, const std::vector<int32_t>&, T*);  \
    template void avg_pool_forward<T>(const T*, int64_t, const window_geometry&, bool, T*);                          \
    template void avg_pool_backward<T>(const T*, int64_t, const window_geometry&, bool, T*);                         \
    template void batchnorm_batch_forward<T>(const T*, int64_t, int64_t, int64_t, const T*, const T*, double, T*,    \
                                             std::vector<T>&, std::vector<T>&, std::vector<T>&, std::vector<T>&);    \
    template void batchnorm_batch_backward<T>(const T*, int64_t, int64_t, int64_t, const T*, const std::vector<T>&,  \
                                              const std::vector<T>&, T*, T*, T*);                                    \
    template void affine_forward<T>(const T*, int64_t, int64_t, int64_t, const T*, const T*, T*);                    \
    template void affine_backward<T>(const T*, const T*, int64_t, int64_t, int64_t, const T*, T*, T*, T*);           \
    template void activation_forward<T>(op_kind, double, double, const T*, int64_t, T*);                  \
    template void activation_backward<T>(op_kind, double, double, const T*, const T*, const T*, int64_t,  \
                                         T*);                                                                        \
    template void softmax_forward<T>(const T*, int64_t, int64_t, bool, T*);                                          \
    template void softmax_backward<T>(const T*, const T*, int64_t, int64_t, bool, T*);

SHRINK_TRAIN_OPS(float)
SHRINK_TRAIN_OPS(double)

}  // namespace shrink::train::ops
