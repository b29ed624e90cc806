// Truncated SVD of a linear layer's weight, by one-sided Jacobi (Hestenes) rotations in
// double precision: simple, accurate to working precision, and dependency-free.
#pragma once

#include <cstdint>
#include <vector>

namespace svd {

struct decomposition {
    std::vector<double> sigma;   // descending, min(rows, cols) values
    std::vector<double> left;    // rows x k, column j = left singular vector j
    std::vector<double> right;   // cols x k, column j = right singular vector j
    uint64_t k = 0;
};

/// W = left * diag(sigma) * right^T for a row-major rows x cols matrix.
decomposition decompose(const float* w, uint64_t rows, uint64_t cols);

/// Smallest rank whose kept energy sum(sigma^2) reaches `energy` of the total.
uint64_t rank_for_energy(const std::vector<double>& sigma, double energy);

/// The two factors of the rank-r approximation: first = right_r^T (r x cols),
/// second = left_r * diag(sigma_r) (rows x r), so W ~ second * first.
void factors(const decomposition& d, uint64_t rows, uint64_t cols, uint64_t rank, std::vector<float>& first,
             std::vector<float>& second);

}  // namespace svd
