#include "magnitude_cuda.hpp"

#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace magnitude::cuda {

namespace {

// A finite non-negative float's bits order as its value; +1 leaves 0 for pruned weights.
__global__ void keys_kernel(const float* w, const uint8_t* current, uint64_t n, uint64_t offset, unsigned long long* keys) {
    for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x) {
        const bool dead = current && !current[i];
        const unsigned long long magnitude = dead ? 0ull : (unsigned long long)__float_as_uint(fabsf(w[i])) + 1ull;
        keys[offset + i] = (magnitude << 32) | (offset + i);
    }
}

__global__ void prune_kernel(const unsigned long long* sorted, uint64_t k, uint8_t* mask) {
    for (uint64_t j = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < k; j += uint64_t(gridDim.x) * blockDim.x)
        mask[sorted[j] & 0xffffffffull] = 0;
}

unsigned blocks_for(uint64_t n) { return unsigned(std::min<uint64_t>(4096, (n + 255) / 256 + 1)); }

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("pruner.magnitude on CUDA: ") + what + ": " + cudaGetErrorString(e));
}

}  // namespace

std::vector<std::vector<uint8_t>> prune(const shrink::cuda_device& gpu, const std::vector<const std::vector<float>*>& tensors,
                                        const std::vector<const std::vector<uint8_t>*>& current, double sparsity) {
    cudaStream_t stream = static_cast<cudaStream_t>(gpu.stream());
    uint64_t total = 0;
    for (const auto* t : tensors) total += t->size();
    if (total >= (uint64_t(1) << 32)) throw std::runtime_error("pruner.magnitude on CUDA takes at most 2^32 weights at once");
    std::vector<std::vector<uint8_t>> masks(tensors.size());
    for (size_t t = 0; t < tensors.size(); ++t) masks[t].assign(tensors[t]->size(), 1);
    const uint64_t k = uint64_t(std::llround(sparsity * double(total)));
    if (k == 0 || total == 0) return masks;

    auto keys = gpu.allocate<unsigned long long>(total);
    auto sorted = gpu.allocate<unsigned long long>(total);
    uint64_t offset = 0;
    for (size_t t = 0; t < tensors.size(); ++t) {
        const uint64_t n = tensors[t]->size();
        auto w = gpu.upload(*tensors[t]);
        const bool has_mask = current[t] && !current[t]->empty();
        auto m = has_mask ? gpu.upload(*current[t]) : shrink::device_buffer<uint8_t>();
        keys_kernel<<<blocks_for(n), 256, 0, stream>>>(w.data(), has_mask ? m.data() : nullptr, n, offset, keys.data());
        gpu.synchronize();  // w and m are freed at the end of this iteration
        offset += n;
    }
    size_t temp_bytes = 0;
    check(cub::DeviceRadixSort::SortKeys(nullptr, temp_bytes, keys.data(), sorted.data(), total, 0, 64, stream), "sizing the sort");
    auto temp = gpu.allocate<uint8_t>(temp_bytes);
    check(cub::DeviceRadixSort::SortKeys(temp.data(), temp_bytes, keys.data(), sorted.data(), total, 0, 64, stream), "sorting");
    auto mask = gpu.allocate<uint8_t>(total);
    check(cudaMemsetAsync(mask.data(), 1, total, stream), "clearing the mask");
    prune_kernel<<<blocks_for(k), 256, 0, stream>>>(sorted.data(), k, mask.data());
    gpu.synchronize();  // reports a failed launch, which a copy alone would not
    const std::vector<uint8_t> all = gpu.download(mask);
    offset = 0;
    for (size_t t = 0; t < tensors.size(); ++t) {
        std::copy(all.begin() + int64_t(offset), all.begin() + int64_t(offset + masks[t].size()), masks[t].begin());
        offset += masks[t].size();
    }
    return masks;
}

}  // namespace magnitude::cuda
