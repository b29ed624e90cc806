// SmoothQuant (Xiao et al. 2023): a layer's int8 input quantization suffers from a few
// input channels far larger than the rest; dividing channel j of the input by s_j and
// multiplying column j of every weight that reads it by s_j computes the same outputs and
// moves part of the range into the weights, which quantize per output channel and so
// mind it less. As the paper's code: s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), with
// max|W_j| over every layer reading the input, both clamped at 1e-5; the division folded
// into the norm that makes the input.
#pragma once

#include <cstdint>
#include <vector>

namespace smooth {

/// The per-channel scales from the input's max |x_j| and the weights' max |w_ij| per column.
std::vector<float> scales(const std::vector<float>& input_absmax, const std::vector<float>& weight_absmax, double alpha);

/// Max |w| of each column of `rows` x `cols` weights, folded into `into` (cols values).
void column_absmax(const float* w, uint64_t rows, uint64_t cols, std::vector<float>& into);

}  // namespace smooth
