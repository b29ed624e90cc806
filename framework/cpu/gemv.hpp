// Matrix-vector products for tiny batches (a few rows): oneDNN's matmul pays a fixed cost
// per call that dominates there. Parallel over output features (OpenMP, the runtime
// oneDNN uses, so no second thread pool), each output one fixed-order SIMD dot product:
// the result does not depend on the thread count.
#pragma once

#include <cstdint>

namespace shrink::cpu {

/// dst[r, n] = relu?(src[r, :] . weight[n, :] + bias[n]) for r < rows; weight is [n, k].
void gemv_rows(const float* src, int64_t rows, const float* weight, const float* bias, float* dst, int64_t n, int64_t k,
               bool relu);

}  // namespace shrink::cpu
