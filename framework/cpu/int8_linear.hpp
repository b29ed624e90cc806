// A W8A8 linear layer on oneDNN's integer matmul (u8 activations x s8 weights, s32 sums):
// what static activation quantization with int8 per-channel weights computes, run as
// integers rather than simulated in float, so the quantized model is faster, not only
// smaller (docs/benchmarks.md, "W8A8 on int8 matmul").
#pragma once

#include "cpu/kernel.hpp"

#include <cstdint>

namespace shrink::cpu {

/// The input's 8-bit asymmetric grid: x -> clamp(round(x / scale) + zero_point, 0, 255).
struct u8_grid {
    float scale = 1;
    int32_t zero_point = 0;
};

/// Whether oneDNN's u8 x s8 matmul sums exactly on this CPU. Without VNNI (an AVX2-only
/// CPU such as AMD Zen 3) it multiplies with vpmaddubsw, whose 16-bit pair sums saturate
/// (255 * 127 * 2 > 32767): the results then differ from the integer products the
/// quantized model means, so the engine runs such layers as the float simulation
/// instead, which computes them exactly (docs/benchmarks.md, "W8A8 on the integer matmul").
bool int8_matmul_exact();

/// One W8A8 linear layer for a fixed batch size: dst[m, n] = relu?(grid.scale *
/// row_scales[c] * sum_j (u8(src[r, j]) - zero_point) * codes[c, j] + bias[c]), with
/// codes [n, k] the weight's symmetric int8 codes, one scale per output row. Plain in,
/// plain out; the codes are reordered once, at creation.
kernel make_int8_linear_kernel(int64_t m, int64_t n, int64_t k, const int8_t* codes, const float* row_scales, u8_grid grid,
                               const float* bias, bool relu);

}  // namespace shrink::cpu
