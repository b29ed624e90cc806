// Weight quantization onto a table of values instead of an evenly spaced grid.
//
// NF4 (QLoRA, Dettmers et al. 2023): each group of `group_size` elements of a row is
// divided by its absmax and rounded to the nearest of the 16 NormalFloat values (the
// quantiles of a normal distribution, 0 exact); the absmaxes are the scales, which the
// host may store double-quantized.
//
// k-means (weight sharing, Han et al. 2016): the values of the tensor (or of each row)
// are clustered into 2^bits centroids by Lloyd's algorithm from a k-means++ start drawn
// from the seed; each weight stores its centroid's index.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace codebook {

/// QLoRA's NormalFloat 4-bit table, ascending (index 7 is 0).
extern const std::array<float, 16> nf4;

struct nf4_result {
    std::vector<int8_t> codes;  // table index - 8, row-major
    std::vector<float> scales;  // absmax per group: rows x ceil(cols / group_size)
};

/// NF4 codes of a row-major [rows, cols] matrix; rows run in parallel, results independent
/// of the thread count.
nf4_result quantize_nf4(const float* w, uint64_t rows, uint64_t cols, uint64_t group_size);

struct kmeans_options {
    int bits = 4;             // 2^bits centroids, 1..8
    bool per_row = false;     // a table per row instead of one for the tensor
    int iterations = 20;      // Lloyd iterations at most (it stops when no index changes)
    uint64_t seed = 0;
};

struct kmeans_result {
    std::vector<int8_t> codes;   // centroid index - 2^(container bits - 1), row-major
    std::vector<float> table;    // per table: 2^container bits values, the centroids ascending then
                                 // the last one repeated (a 3-bit table fills a 4-bit container)
    int container_bits = 4;      // 4 for bits <= 4, else 8
    // The sum of squared errors after the k-means++ start and after each iteration,
    // summed over the tables (Lloyd's algorithm never increases it).
    std::vector<double> sse;
};

/// k-means weight sharing of a row-major [rows, cols] matrix.
kmeans_result quantize_kmeans(const float* w, uint64_t rows, uint64_t cols, const kmeans_options& o);

/// Decodes codes and a table (kmeans) or codes and scales (nf4), for error measurement.
std::vector<float> decode_kmeans(const kmeans_result& r, uint64_t rows, uint64_t cols, bool per_row);
std::vector<float> decode_nf4(const nf4_result& r, uint64_t rows, uint64_t cols, uint64_t group_size);

}  // namespace codebook
