// AWQ (Lin et al. 2024): before rounding a layer's weights to nearest, scale each input
// channel j of the weights by s_j = mean|x_j|^r and divide the input by it (folded into the
// layer that makes the input), so the channels that carry large activations lose less to
// rounding; the exponent r is searched on a grid for the least output error. As the
// paper's code: r = i / grid for i = 0..grid-1, s clamped at 1e-4 and divided by
// sqrt(max s * min s). Our error is exact over the whole calibration set: with H = X^T X,
// ||(W' - W) X^T||^2 = tr(dW H dW^T), summed over the layers sharing the input (the
// paper's code measures the block's output on a sample instead).
#pragma once

#include "rtn_kernel.hpp"

#include <cstdint>
#include <vector>

namespace awq {

/// A weight of a group sharing one input: rows x d floats.
struct member {
    const float* w;
    uint64_t rows;
};

struct search_result {
    int best = 0;                 // the grid index of the least error
    double ratio = 0;             // best / grid
    std::vector<double> errors;   // per grid index
    std::vector<float> scales;    // at the best ratio
};

/// The scales for exponent `ratio` from the input's mean |x_j|.
std::vector<float> scales_for(const std::vector<float>& mean_abs, double ratio);

/// tr(dW H dW^T) for dW = RTN(W diag(s)) diag(s)^-1 - W: how far the layer's outputs on the
/// calibration inputs move. h: d x d floats.
double output_error(const float* w, uint64_t rows, uint64_t d, const std::vector<float>& scales, const std::vector<float>& h,
                    const rtn::options& o);

/// RTN with each group's range clipped (AWQ's auto-clip): for every row and group of
/// columns, the range [min, max] (holding 0) shrunk by c = 1 - 0.5 i / steps, i =
/// 0..steps-1 (the paper's grid), keeping the c whose codes move the layer's output least,
/// dq H_gg dq^T with H_gg the group's diagonal block of H (d x d floats, the input basis of
/// w). c = 1 is RTN, so no group does worse than RTN on that measure. The result is RTN's
/// encoding.
rtn::result quantize_clipped(const float* w, uint64_t rows, uint64_t d, const std::vector<float>& h, const rtn::options& o, int steps);

/// The grid search for a group (every member's input is the same, of width d).
search_result search(const std::vector<member>& group, uint64_t d, const std::vector<float>& h, const std::vector<float>& mean_abs,
                     const rtn::options& o, int grid);

}  // namespace awq
