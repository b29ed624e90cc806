#include "cuda/decoder_kernels.hpp"

#include <cfloat>

namespace shrink::gpu {

namespace {

constexpr int block = 128;  // threads of the per-row kernels: a power of two for the reductions

unsigned grid_for(int64_t jobs) { return unsigned(jobs < 65535 * 32 ? (jobs > 0 ? jobs : 1) : 65535 * 32); }

// Every block of these kernels takes jobs blockIdx.x, blockIdx.x + gridDim.x, ...
#define BLOCK_LOOP(job, n) for (int64_t job = blockIdx.x; job < (n); job += gridDim.x)

__global__ void embedding_kernel(const float* tokens, int64_t rows, const float* table, int64_t width, float* dst) {
    BLOCK_LOOP(r, rows) {
        const float* from = table + int64_t(tokens[r * 2]) * width;
        for (int64_t i = threadIdx.x; i < width; i += blockDim.x) dst[r * width + i] = from[i];
    }
}

/// The sum of every thread's `v` in the block, returned to all (shared: blockDim.x slots).
template <class T>
__device__ T block_sum(T v, T* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (int(threadIdx.x) < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    const T total = shared[0];
    __syncthreads();  // before the slots are written again
    return total;
}

__device__ float block_max(float v, float* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (int(threadIdx.x) < s) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + s]);
        __syncthreads();
    }
    const float top = shared[0];
    __syncthreads();
    return top;
}

__global__ void rms_norm_kernel(const float* src, int64_t rows, int64_t width, const float* weight, float eps, float* dst) {
    __shared__ double shared[block];
    BLOCK_LOOP(r, rows) {
        const float* x = src + r * width;
        double sum = 0;
        for (int64_t i = threadIdx.x; i < width; i += blockDim.x) sum += double(x[i]) * x[i];
        sum = block_sum(sum, shared);
        const float inv = float(1.0 / sqrt(sum / double(width) + double(eps)));
        for (int64_t i = threadIdx.x; i < width; i += blockDim.x) dst[r * width + i] = x[i] * inv * weight[i];
    }
}

__global__ void rotate_kernel(float* x, const float* tokens, int64_t rows, int64_t heads, int64_t dim, double theta) {
    const int64_t half = dim / 2;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * half; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = i / half, k = i % half;
        const double angle = double(tokens[r * 2 + 1]) * pow(theta, -2.0 * double(k) / double(dim));
        const float c = float(cos(angle)), s = float(sin(angle));
        for (int64_t h = 0; h < heads; ++h) {
            float* head = x + (r * heads + h) * dim;
            const float a = head[k], b = head[k + half];
            head[k] = a * c - b * s;
            head[k + half] = b * c + a * s;
        }
    }
}

// One block per (query row, head): the scores of its window in shared memory, their max
// and sum of exponentials reduced across the block, then one thread per output value.
__global__ void attend_kernel(const float* qr, const float* kr, const float* v, const float* tokens, int64_t rows, int64_t heads,
                              int64_t kv_heads, int64_t dim, float* dst) {
    extern __shared__ double shared[];  // block doubles for the sum, block floats for the max, then the scores
    float* max_slots = reinterpret_cast<float*>(shared + block);
    float* scores = max_slots + block;
    const int64_t group = heads / kv_heads;
    const float scale = float(1.0 / sqrt(double(dim)));
    BLOCK_LOOP(job, rows * heads) {
        const int64_t r = job / heads, h = job % heads, kv = h / group;
        const int64_t from = r - int64_t(tokens[r * 2 + 1]), n = r - from + 1;
        const float* q = qr + (r * heads + h) * dim;
        float top = -FLT_MAX;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            const float* k = kr + ((from + j) * kv_heads + kv) * dim;
            float dot = 0;
            for (int64_t d = 0; d < dim; ++d) dot += q[d] * k[d];
            scores[j] = dot * scale;
            top = fmaxf(top, dot * scale);
        }
        top = block_max(top, max_slots);
        double total = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            scores[j] = expf(scores[j] - top);
            total += scores[j];
        }
        total = block_sum(total, shared);  // its barriers also publish every score
        for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
            double sum = 0;
            for (int64_t j = 0; j < n; ++j) sum += double(scores[j]) * v[((from + j) * kv_heads + kv) * dim + d];
            dst[(r * heads + h) * dim + d] = float(sum / total);
        }
        __syncthreads();  // the next job writes the scores again
    }
}

}  // namespace

void embedding(const float* tokens, int64_t rows, const float* table, int64_t width, float* dst, cudaStream_t stream) {
    if (rows > 0) embedding_kernel<<<grid_for(rows), block, 0, stream>>>(tokens, rows, table, width, dst);
}

void rms_norm(const float* src, int64_t rows, int64_t width, const float* weight, float eps, float* dst, cudaStream_t stream) {
    if (rows > 0) rms_norm_kernel<<<grid_for(rows), block, 0, stream>>>(src, rows, width, weight, eps, dst);
}

void rotate_heads(float* x, const float* tokens, int64_t rows, int64_t heads, int64_t dim, double theta, cudaStream_t stream) {
    const int64_t pairs = rows * (dim / 2);
    if (pairs > 0) rotate_kernel<<<grid_for((pairs + 255) / 256), 256, 0, stream>>>(x, tokens, rows, heads, dim, theta);
}

void attend(const float* qr, const float* kr, const float* v, const float* tokens, int64_t rows, int64_t heads, int64_t kv_heads,
            int64_t dim, int64_t longest, float* dst, cudaStream_t stream) {
    if (rows <= 0) return;
    const size_t bytes = block * (sizeof(double) + sizeof(float)) + size_t(longest) * sizeof(float);
    // Past the default 48 KiB of dynamic shared memory a kernel must ask for more; a window
    // too long for the device's limit fails at launch, reported at the next synchronize.
    if (bytes > 48 * 1024) cudaFuncSetAttribute(attend_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    attend_kernel<<<grid_for(rows * heads), block, bytes, stream>>>(qr, kr, v, tokens, rows, heads, kv_heads, dim, dst);
}

}  // namespace shrink::gpu
