// Round-to-nearest weight quantization of a row-major [rows, cols] matrix.
//
// Symmetric: scale = max|w| / qmax, q = round(w / scale) in [-qmax, qmax].
// Asymmetric: the range is widened to contain 0 so that 0 is exact (pruned weights stay
// zero), scale = (max - min) / (2^bits - 1), zero point z = qmin + round(-min / scale),
// q = clamp(round(w / scale) + z). One scale per tensor, per row (channel) or per group
// of `group_size` consecutive elements of a row.
#pragma once

#include <cstdint>
#include <vector>

namespace rtn {

enum class granularity { per_tensor, per_channel, per_group };

struct options {
    int bits = 8;  // 2..8
    bool symmetric = true;
    granularity gran = granularity::per_channel;
    uint64_t group_size = 64;  // per_group only
};

struct result {
    uint64_t group_size = 0;  // as the host stores it: 0 per-tensor, cols per-channel
    std::vector<int8_t> q;
    std::vector<float> scales;
    std::vector<int8_t> zero_points;  // empty when symmetric
};

/// Quantizes; rows run in parallel (TBB) with results independent of the thread count.
/// `w` must be finite (the host guarantees it for model weights).
result quantize(const float* w, uint64_t rows, uint64_t cols, const options& o);

/// Dequantizes a result back to floats (for error measurement).
std::vector<float> dequantize(const result& r, uint64_t rows, uint64_t cols);

}  // namespace rtn
