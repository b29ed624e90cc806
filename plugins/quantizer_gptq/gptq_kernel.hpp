// GPTQ (Frantar et al. 2023): quantizes a weight's columns one at a time and moves each
// column's rounding error onto the columns not yet quantized, weighted by the inverse of
// the layer's input Hessian H = X^T X, so the layer's output on the calibration inputs
// changes as little as the grid allows. As the paper's reference implementation: damping
// of a fraction of H's mean diagonal, blocks of columns with lazy updates of the rest,
// optional activation order (columns by decreasing H diagonal) with static groups, dead
// inputs (zero diagonal) zeroed. Where it differs: the updates go through the upper factor
// R of H = R R^T rather than the Cholesky factor of H^-1 (the same weights, without an
// inverse; gptq_kernel.cpp, scaled_factor), in float32 as the paper's code.
//
// The grid is RTN's (plugins/quantizer_rtn): symmetric q in [-qmax, qmax] with scale
// max|w| / qmax, or asymmetric q in [-2^(b-1), 2^(b-1) - 1] with scale (max - min) /
// (2^b - 1) over a range holding 0 and a zero point; value = scale (q - zero). One scale
// per row (group_size 0) or per group of group_size consecutive columns of a row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gptq {

struct options {
    int bits = 4;               // 2..8
    bool symmetric = false;
    uint64_t group_size = 128;  // 0: one scale per row
    bool act_order = false;
    double damp = 0.01;         // of the mean diagonal of H
    uint64_t block_size = 128;
};

struct result {
    std::vector<int8_t> q;             // row-major codes, original column order
    std::vector<float> scales;         // [rows, groups]
    std::vector<int8_t> zero_points;   // [rows, groups]; empty when symmetric
    uint64_t group_size = 0;           // as stored: cols when one scale per row
    double damp = 0;                   // the damping fraction that made H positive definite
    int damp_raised = 0;               // times the damping was multiplied by 10 for Cholesky
};

/// w: row-major [rows, cols]; h: [cols, cols], X^T X of the layer's inputs (any positive
/// multiple). Float32 throughout, the products on oneDNN's sgemm (plugins/linalg); rows in
/// parallel chunks: the result is the same on any thread count. Throws std::runtime_error
/// when H stays indefinite after damping was raised six times.
result quantize(const float* w, uint64_t rows, uint64_t cols, const std::vector<double>& h, const options& o);

/// The update as the OBS derivation states it, for tests: column by column in double,
/// with the inverse Hessian itself, each quantized column's row and column removed from it
/// (H^-1 <- H^-1 - H^-1[:, i] H^-1[i, :] / H^-1[i, i]). No blocks, no Cholesky factor.
result quantize_reference(const float* w, uint64_t rows, uint64_t cols, const std::vector<double>& h, const options& o);

/// Dequantized weights of a result, row-major [rows, cols].
std::vector<float> dequantize(const result& r, uint64_t rows, uint64_t cols);

}  // namespace gptq
