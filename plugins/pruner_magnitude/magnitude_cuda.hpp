// pruner.magnitude on a CUDA device: the same masks as magnitude_kernel.hpp, bit for bit.
// Each weight becomes one 64-bit key, magnitude above and position below (pruned weights
// first), so that a radix sort orders them exactly as the CPU's comparison does and the
// first k keys name the weights to prune.
#pragma once

#include "magnitude_kernel.hpp"

#include <shrink/cuda.hpp>

namespace magnitude::cuda {

/// As magnitude::prune, on `gpu`. At most 2^32 elements in all.
std::vector<std::vector<uint8_t>> prune(const shrink::cuda_device& gpu, const std::vector<const std::vector<float>*>& tensors,
                                        const std::vector<const std::vector<uint8_t>*>& current, double sparsity);

}  // namespace magnitude::cuda
