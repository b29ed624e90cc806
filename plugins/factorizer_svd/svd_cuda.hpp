// factorizer.svd on a CUDA device: the decomposition by cuSOLVER's gesvd in double
// precision, on the stage's stream. Singular values agree with the CPU's Jacobi sweeps to
// working precision; a singular vector may come out with the opposite sign, which leaves
// the two factors' product (what the model computes) unchanged.
#pragma once

#include "svd_kernel.hpp"

#include <shrink/cuda.hpp>

namespace svd::cuda {

/// As svd::decompose, on `gpu`.
decomposition decompose(const shrink::cuda_device& gpu, const float* w, uint64_t rows, uint64_t cols);

}  // namespace svd::cuda
