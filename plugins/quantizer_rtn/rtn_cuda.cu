#include "rtn_cuda.hpp"

#include <cuda_runtime.h>

#include <cfloat>

namespace rtn::cuda {

namespace {

struct group_params {
    float scale;
    float zero;
};

// std::min and std::max exactly: which of two equal values (0 and -0) wins matters for bits.
__device__ __forceinline__ float min_of(float a, float b) { return b < a ? b : a; }
__device__ __forceinline__ float max_of(float a, float b) { return a < b ? b : a; }

__device__ __forceinline__ group_params params_of(float lo, float hi, int bits, bool symmetric) {
    const int qmax = (1 << (bits - 1)) - 1;
    // fabsf as on the CPU: a zero scale is +0 whatever the signs of zeros in the group.
    if (symmetric) return {fabsf(__fdiv_rn(max_of(-lo, hi), float(qmax))), 0.0f};
    const float scale = fabsf(__fdiv_rn(__fsub_rn(hi, lo), float((1 << bits) - 1)));
    if (scale == 0.0f) return {0.0f, 0.0f};
    const float qmin = float(-(1 << (bits - 1)));
    const float z = __fadd_rn(qmin, rintf(__fdiv_rn(-lo, scale)));
    return {scale, min_of(max_of(z, qmin), float(qmax))};
}

__device__ __forceinline__ int8_t round_one(float x, float inv, float zero, float lo, float hi) {
    return int8_t(int(rintf(min_of(max_of(__fadd_rn(__fmul_rn(x, inv), zero), lo), hi))));
}

__device__ __forceinline__ void team_min_max(float& lo, float& hi, int team, float* shared) {
    for (int o = 16; o > 0; o /= 2) {
        lo = min_of(lo, __shfl_xor_sync(0xffffffffu, lo, o));
        hi = max_of(hi, __shfl_xor_sync(0xffffffffu, hi, o));
    }
    if (team <= 32) return;
    const int warp = threadIdx.x / 32, warps = team / 32;
    if (threadIdx.x % 32 == 0) {
        shared[warp] = lo;
        shared[32 + warp] = hi;
    }
    __syncthreads();
    lo = shared[0];
    hi = shared[32];
    for (int w = 1; w < warps; ++w) {
        lo = min_of(lo, shared[w]);
        hi = max_of(hi, shared[32 + w]);
    }
}

// A team of T threads per group (one warp, or the whole block); each thread keeps up to P
// of the group's values in registers, so the weights are read from memory once. Groups
// longer than T * P are read twice.
template <int T, int P>
__global__ void groups_kernel(const float* __restrict__ w, uint64_t groups_total, uint64_t cols, uint64_t g, uint64_t groups_per_row,
                              int bits, bool symmetric, int8_t* __restrict__ q, float* __restrict__ scales, int8_t* __restrict__ zeros) {
    __shared__ float shared[64];
    const uint64_t group = uint64_t(blockIdx.x) * (blockDim.x / T) + threadIdx.x / T;
    if (group >= groups_total) return;  // whole teams only: with T = blockDim one team per block
    const int lane = threadIdx.x % T;
    const uint64_t row = group / groups_per_row, k = group % groups_per_row;
    const uint64_t start = row * cols + k * g;
    const uint64_t n = min(g, cols - k * g);
    const float* x = w + start;
    float v[P];
    float lo = 0.0f, hi = 0.0f;  // the range always contains 0
    const bool cached = n <= uint64_t(T) * P;
    if (cached) {
#pragma unroll
        for (int p = 0; p < P; ++p) {
            const uint64_t i = uint64_t(lane) + uint64_t(p) * T;
            v[p] = i < n ? x[i] : 0.0f;
            lo = min_of(lo, v[p]);
            hi = max_of(hi, v[p]);
        }
    } else {
        for (uint64_t i = lane; i < n; i += T) {
            lo = min_of(lo, x[i]);
            hi = max_of(hi, x[i]);
        }
    }
    team_min_max(lo, hi, T, shared);
    const group_params gp = params_of(lo, hi, bits, symmetric);
    if (lane == 0) {
        scales[group] = gp.scale;
        if (!symmetric) zeros[group] = int8_t(int(gp.zero));
    }
    const int qmax = (1 << (bits - 1)) - 1;
    const float qlo = symmetric ? float(-qmax) : float(-(1 << (bits - 1))), qhi = float(qmax);
    const float inv = gp.scale == 0.0f ? 0.0f : __fdiv_rn(1.0f, gp.scale);
    int8_t* out = q + start;
    if (cached) {
#pragma unroll
        for (int p = 0; p < P; ++p) {
            const uint64_t i = uint64_t(lane) + uint64_t(p) * T;
            if (i < n) out[i] = round_one(v[p], inv, gp.zero, qlo, qhi);
        }
    } else {
        for (uint64_t i = lane; i < n; i += T) out[i] = round_one(x[i], inv, gp.zero, qlo, qhi);
    }
}

constexpr int reduce_threads = 256;

// Per-tensor range, pass 1: each block's min and max into partial[2 * block].
__global__ void partial_range_kernel(const float* __restrict__ w, uint64_t n, float* partial) {
    __shared__ float shared[64];
    float lo = 0.0f, hi = 0.0f;
    for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x) {
        lo = min_of(lo, w[i]);
        hi = max_of(hi, w[i]);
    }
    team_min_max(lo, hi, reduce_threads, shared);
    if (threadIdx.x == 0) {
        partial[2 * blockIdx.x] = lo;
        partial[2 * blockIdx.x + 1] = hi;
    }
}

// Pass 2: one block folds the partials and writes the tensor's scale (and zero point).
__global__ void tensor_params_kernel(const float* partial, int blocks, int bits, bool symmetric, float* params, float* scales,
                                     int8_t* zeros) {
    __shared__ float shared[64];
    float lo = 0.0f, hi = 0.0f;
    for (int b = threadIdx.x; b < blocks; b += blockDim.x) {
        lo = min_of(lo, partial[2 * b]);
        hi = max_of(hi, partial[2 * b + 1]);
    }
    team_min_max(lo, hi, reduce_threads, shared);
    if (threadIdx.x == 0) {
        const group_params gp = params_of(lo, hi, bits, symmetric);
        params[0] = gp.scale;
        params[1] = gp.zero;
        scales[0] = gp.scale;
        if (!symmetric) zeros[0] = int8_t(int(gp.zero));
    }
}

__global__ void round_all_kernel(const float* __restrict__ w, uint64_t n, const float* params, int bits, bool symmetric,
                                 int8_t* __restrict__ q) {
    const float scale = params[0], zero = params[1];
    const int qmax = (1 << (bits - 1)) - 1;
    const float qlo = symmetric ? float(-qmax) : float(-(1 << (bits - 1))), qhi = float(qmax);
    const float inv = scale == 0.0f ? 0.0f : __fdiv_rn(1.0f, scale);
    for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x)
        q[i] = round_one(w[i], inv, zero, qlo, qhi);
}

int range_blocks(uint64_t n) { return int(std::min<uint64_t>(1024, (n + reduce_threads - 1) / reduce_threads)); }

template <int T, int P>
void launch_groups(const float* w, uint64_t rows, uint64_t cols, uint64_t g, int bits, bool symmetric, int8_t* q, float* scales,
                   int8_t* zeros, cudaStream_t stream) {
    const uint64_t per_row = (cols + g - 1) / g, total = rows * per_row;
    const int block = T > 32 ? T : 256;  // a team wider than a warp has its block to itself
    const uint64_t teams = uint64_t(block / T);
    groups_kernel<T, P><<<unsigned((total + teams - 1) / teams), block, 0, stream>>>(w, total, cols, g, per_row, bits, symmetric, q,
                                                                                       scales, zeros);
}

}  // namespace

uint64_t scratch_floats(uint64_t rows, uint64_t cols, const options& o) {
    return o.gran == granularity::per_tensor ? 2 * uint64_t(range_blocks(rows * cols)) + 2 : 0;
}

void quantize_device(const float* w, uint64_t rows, uint64_t cols, const options& o, int8_t* q, float* scales, int8_t* zeros,
                     float* scratch, void* stream_ptr) {
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    if (rows == 0 || cols == 0) return;
    if (o.gran == granularity::per_tensor) {
        const uint64_t n = rows * cols;
        const int blocks = range_blocks(n);
        float* params = scratch + 2 * blocks;
        partial_range_kernel<<<blocks, reduce_threads, 0, stream>>>(w, n, scratch);
        tensor_params_kernel<<<1, reduce_threads, 0, stream>>>(scratch, blocks, o.bits, o.symmetric, params, scales, zeros);
        round_all_kernel<<<unsigned(std::min<uint64_t>(4096, (n + 255) / 256)), 256, 0, stream>>>(w, n, params, o.bits, o.symmetric, q);
        return;
    }
    const uint64_t g = o.gran == granularity::per_channel ? cols : std::min<uint64_t>(o.group_size, cols);
    if (g <= 64) return launch_groups<32, 2>(w, rows, cols, g, o.bits, o.symmetric, q, scales, zeros, stream);
    if (g <= 128) return launch_groups<32, 4>(w, rows, cols, g, o.bits, o.symmetric, q, scales, zeros, stream);
    if (g <= 256) return launch_groups<32, 8>(w, rows, cols, g, o.bits, o.symmetric, q, scales, zeros, stream);
    if (g <= 1024) return launch_groups<128, 8>(w, rows, cols, g, o.bits, o.symmetric, q, scales, zeros, stream);
    launch_groups<256, 16>(w, rows, cols, g, o.bits, o.symmetric, q, scales, zeros, stream);
}

result quantize(const shrink::cuda_device& gpu, const float* w, uint64_t rows, uint64_t cols, const options& o) {
    result r;
    const uint64_t g = o.gran == granularity::per_tensor ? 0 : o.gran == granularity::per_channel ? cols : std::min<uint64_t>(o.group_size, cols);
    r.group_size = g;
    const uint64_t scale_count = g ? rows * ((cols + g - 1) / g) : 1;
    auto dw = gpu.upload(w, rows * cols);
    auto dq = gpu.allocate<int8_t>(rows * cols);
    auto ds = gpu.allocate<float>(scale_count);
    auto dz = gpu.allocate<int8_t>(o.symmetric ? 0 : scale_count);
    auto scratch = gpu.allocate<float>(scratch_floats(rows, cols, o));
    quantize_device(dw.data(), rows, cols, o, dq.data(), ds.data(), dz.data(), scratch.data(), gpu.stream());
    gpu.synchronize();
    r.q = gpu.download(dq);
    r.scales = gpu.download(ds);
    if (!o.symmetric) r.zero_points = gpu.download(dz);
    return r;
}

}  // namespace rtn::cuda
