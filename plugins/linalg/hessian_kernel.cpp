#include "hessian_kernel.hpp"

#include "linalg.hpp"

#include <algorithm>

#include <malloc.h>

namespace hessian {

// By bands of 1024 rows of H: every tile of the band on or left of the diagonal is one
// product X[:, I]^T X[:, J] (512 x 1024, the batch's rows its inner dimension; the diagonal
// tiles' upper parts are computed and dropped), then the band is summed into h. Tiles this
// large keep the packing of X, redone per tile, small next to the product; a band's tiles
// come in pairs, which keeps two threads evenly busy; the band's floats are the only
// memory beyond h.
void accumulate_lower(std::vector<double>& h, const float* x, uint64_t rows, uint64_t cols) {
    constexpr uint64_t band = 1024, tm = 512, tn = 1024;
    if (rows == 0) return;
    std::vector<float> part(std::min(band, cols) * cols);  // the band's rows, each up to the diagonal tile's end
    for (uint64_t b0 = 0; b0 < cols; b0 += band) {
        const uint64_t b1 = std::min(cols, b0 + band);
        std::vector<linalg::product> products;
        for (uint64_t i0 = b0; i0 < b1; i0 += tm)
            for (uint64_t j0 = 0; j0 < b1; j0 += tn)
                products.push_back({true, false, int64_t(std::min(tm, b1 - i0)), int64_t(std::min(tn, b1 - j0)), int64_t(rows), 1.0f, x + i0,
                                    int64_t(cols), x + j0, int64_t(cols), 0.0f, part.data() + (i0 - b0) * cols + j0, int64_t(cols)});
        linalg::gemm_batch(products);
        linalg::parallel_for(b1 - b0, [&](uint64_t i) {
            double* hi = h.data() + (b0 + i) * cols;
            const float* pi = part.data() + i * cols;
            for (uint64_t j = 0; j <= b0 + i; ++j) hi[j] += double(pi[j]);
        });
    }
    // The products' packing buffers were freed on the worker threads, into their malloc
    // arenas, which glibc keeps: the next batch's would come on top of them.
    malloc_trim(0);
}

// In 64 x 64 tiles, so that both the rows read and the columns written stay in cache.
void mirror(std::vector<double>& h, uint64_t cols) {
    constexpr uint64_t t = 64;
    const uint64_t tiles = (cols + t - 1) / t;
    linalg::parallel_for(tiles, [&](uint64_t bi) {
        for (uint64_t bj = 0; bj <= bi; ++bj)
            for (uint64_t j = bj * t; j < std::min(cols, bj * t + t); ++j)
                for (uint64_t i = std::max(j + 1, bi * t); i < std::min(cols, bi * t + t); ++i) h[j * cols + i] = h[i * cols + j];
    });
}

}  // namespace hessian
