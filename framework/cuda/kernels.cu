#include "cuda/kernels.hpp"

#include <cfloat>

namespace shrink::gpu {

namespace {

constexpr int threads = 256;

unsigned blocks_for(int64_t n) {
    const int64_t b = (n + threads - 1) / threads;
    return unsigned(b < 65535 * 32 ? (b > 0 ? b : 1) : 65535 * 32);
}

// Grid-stride loops: any n runs with a bounded grid.
#define GRID_LOOP(i, n) for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__device__ __forceinline__ float apply(act f, float x) {
    switch (f.k) {
        case act::relu: return x > 0.0f ? x : 0.0f;
        case act::leaky_relu: return x >= 0.0f ? x : f.alpha * x;
        case act::sigmoid: return 1.0f / (1.0f + expf(-x));
        case act::tanh: return tanhf(x);
        case act::gelu: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        case act::gelu_tanh: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        case act::clip: return fminf(fmaxf(x, f.alpha), f.beta);
        case act::silu: return x / (1.0f + expf(-x));
        default: return x;
    }
}

__global__ void dequantize_kernel(const int8_t* q, const float* scales, const int8_t* zeros, const uint8_t* mask, uint64_t n,
                                  uint64_t cols, uint64_t group_size, float* out) {
    // Without the overflow of (cols + group_size - 1): a file may give any group size.
    const uint64_t groups = group_size ? cols / group_size + (cols % group_size != 0) : 0;
    GRID_LOOP(i, int64_t(n)) {
        const uint64_t u = uint64_t(i);
        const uint64_t s = group_size ? (u / cols) * groups + (u % cols) / group_size : 0;
        const int32_t z = zeros ? zeros[s] : 0;
        // One rounding, as the CPU decode: the difference of two int8 is exact in float.
        const float v = __fmul_rn(scales[s], float(int32_t(q[u]) - z));
        out[u] = mask && !mask[u] ? 0.0f : v;
    }
}

__global__ void channel_epilogue_kernel(float* x, int64_t total, int64_t channels, int64_t inner, const float* bias,
                                        const float* bn_scale, const float* bn_shift, act f) {
    GRID_LOOP(i, total) {
        const int64_t c = (i / inner) % channels;
        float v = x[i];
        if (bias) v += bias[c];
        if (bn_scale) v = v * bn_scale[c] + bn_shift[c];
        x[i] = apply(f, v);
    }
}

__global__ void activation_kernel(const float* src, float* dst, int64_t n, act f) {
    GRID_LOOP(i, n) dst[i] = apply(f, src[i]);
}

__global__ void fake_quantize_kernel(const float* src, float* dst, int64_t n, float scale, float zero) {
    GRID_LOOP(i, n) {
        // As the CPU: a true division and no fused multiply-add, so both give the same floats.
        const float q = fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(src[i], scale)), zero), 0.0f), 255.0f);
        dst[i] = __fmul_rn(__fsub_rn(q, zero), scale);
    }
}

// One block per row: its absmax (a max, so the same in any order), then each value
// through the row's scale, rounded as the CPU's quantize_row_per_token rounds it.
__global__ void fake_quantize_rows_kernel(const float* src, float* dst, int64_t width) {
    __shared__ float shared[threads];
    const float* in = src + int64_t(blockIdx.x) * width;
    float* out = dst + int64_t(blockIdx.x) * width;
    float m = 0.0f;
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) m = fmaxf(m, fabsf(in[j]));
    shared[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (int(threadIdx.x) < s) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + s]);
        __syncthreads();
    }
    const float scale = __fdiv_rn(fmaxf(shared[0], FLT_MIN), 127.0f);
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x)
        out[j] = __fmul_rn(fminf(fmaxf(rintf(__fdiv_rn(in[j], scale)), -127.0f), 127.0f), scale);
}

__global__ void im2col_kernel(const float* src, window2d w, float* col) {
    const int64_t spatial = w.out_h * w.out_w;
    const int64_t rows = w.in_c * w.kh * w.kw;
    GRID_LOOP(i, w.batch * rows * spatial) {
        const int64_t p = i % spatial;
        const int64_t r = (i / spatial) % rows;
        const int64_t n = i / (spatial * rows);
        const int64_t kj = r % w.kw, ki = (r / w.kw) % w.kh, c = r / (w.kw * w.kh);
        const int64_t oh = p / w.out_w, ow = p % w.out_w;
        const int64_t ih = oh * w.stride_h - w.pad_top + ki * w.dil_h;
        const int64_t iw = ow * w.stride_w - w.pad_left + kj * w.dil_w;
        col[i] = ih >= 0 && ih < w.in_h && iw >= 0 && iw < w.in_w ? src[((n * w.in_c + c) * w.in_h + ih) * w.in_w + iw] : 0.0f;
    }
}

__global__ void pool_kernel(const float* src, window2d w, pool_kind k, float* dst) {
    GRID_LOOP(i, w.batch * w.out_c * w.out_h * w.out_w) {
        const int64_t ow = i % w.out_w, oh = (i / w.out_w) % w.out_h, nc = i / (w.out_w * w.out_h);
        const float* plane = src + nc * w.in_h * w.in_w;
        float best = -FLT_MAX, sum = 0.0f;
        int64_t count = 0;
        for (int64_t a = 0; a < w.kh; ++a)
            for (int64_t b = 0; b < w.kw; ++b) {
                const int64_t ih = oh * w.stride_h - w.pad_top + a * w.dil_h, iw = ow * w.stride_w - w.pad_left + b * w.dil_w;
                if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
                const float v = plane[ih * w.in_w + iw];
                best = fmaxf(best, v);
                sum += v;
                ++count;
            }
        if (k == pool_kind::max) dst[i] = best;
        else dst[i] = sum / float(k == pool_kind::average_with_pad ? w.kh * w.kw : (count ? count : 1));
    }
}

// One block per row: a max, then a sum of exponentials, each reduced across the block.
__global__ void softmax_kernel(const float* src, float* dst, int64_t width, bool log) {
    __shared__ float shared[threads];
    const float* in = src + int64_t(blockIdx.x) * width;
    float* out = dst + int64_t(blockIdx.x) * width;
    float m = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) m = fmaxf(m, in[j]);
    shared[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (int(threadIdx.x) < s) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + s]);
        __syncthreads();
    }
    m = shared[0];
    __syncthreads();
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) sum += expf(in[j] - m);
    shared[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (int(threadIdx.x) < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    sum = shared[0];
    const float log_sum = logf(sum);
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) out[j] = log ? in[j] - m - log_sum : expf(in[j] - m) / sum;
}

struct dims4 {
    int64_t d[4], bs[4];
};

__global__ void binary_kernel(const float* a, const float* b, float* dst, int64_t total, dims4 s, int64_t b_sample, int op) {
    const int64_t sample = s.d[0] * s.d[1] * s.d[2] * s.d[3];
    GRID_LOOP(i, total) {
        const int64_t n = i / sample;
        int64_t rest = i % sample, off = n * b_sample;
        for (int k = 3; k >= 0; --k) {
            off += (rest % s.d[k]) * s.bs[k];
            rest /= s.d[k];
        }
        const float x = a[i], y = b[off];
        dst[i] = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
    }
}

}  // namespace

void dequantize(const int8_t* q, const float* scales, const int8_t* zeros, const uint8_t* mask, uint64_t n, uint64_t cols,
                uint64_t group_size, float* out, cudaStream_t stream) {
    dequantize_kernel<<<blocks_for(int64_t(n)), threads, 0, stream>>>(q, scales, zeros, mask, n, cols, group_size, out);
}

void channel_epilogue(float* x, int64_t batch, int64_t channels, int64_t inner, const float* bias, const float* bn_scale,
                      const float* bn_shift, act f, cudaStream_t stream) {
    const int64_t total = batch * channels * inner;
    channel_epilogue_kernel<<<blocks_for(total), threads, 0, stream>>>(x, total, channels, inner, bias, bn_scale, bn_shift, f);
}

void activation(const float* src, float* dst, int64_t n, act f, cudaStream_t stream) {
    activation_kernel<<<blocks_for(n), threads, 0, stream>>>(src, dst, n, f);
}

void fake_quantize(const float* src, float* dst, int64_t n, float scale, int32_t zero_point, cudaStream_t stream) {
    fake_quantize_kernel<<<blocks_for(n), threads, 0, stream>>>(src, dst, n, scale, float(zero_point));
}

void fake_quantize_rows(const float* src, float* dst, int64_t rows, int64_t width, cudaStream_t stream) {
    if (rows > 0) fake_quantize_rows_kernel<<<unsigned(rows), threads, 0, stream>>>(src, dst, width);
}

void im2col(const float* src, const window2d& w, float* col, cudaStream_t stream) {
    im2col_kernel<<<blocks_for(w.batch * w.in_c * w.kh * w.kw * w.out_h * w.out_w), threads, 0, stream>>>(src, w, col);
}

void pool(const float* src, const window2d& w, pool_kind k, float* dst, cudaStream_t stream) {
    pool_kernel<<<blocks_for(w.batch * w.out_c * w.out_h * w.out_w), threads, 0, stream>>>(src, w, k, dst);
}

void softmax(const float* src, float* dst, int64_t rows, int64_t width, bool log, cudaStream_t stream) {
    if (rows > 0) softmax_kernel<<<unsigned(rows), threads, 0, stream>>>(src, dst, width, log);
}

void binary(const float* a, const float* b, float* dst, int64_t batch, const int64_t dims[4], const int64_t b_strides[4],
            int64_t b_sample, int op, cudaStream_t stream) {
    dims4 s{};
    for (int k = 0; k < 4; ++k) {
        s.d[k] = dims[k];
        s.bs[k] = b_strides[k];
    }
    const int64_t total = batch * dims[0] * dims[1] * dims[2] * dims[3];
    binary_kernel<<<blocks_for(total), threads, 0, stream>>>(a, b, dst, total, s, b_sample, op);
}

}  // namespace shrink::gpu
