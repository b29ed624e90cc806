// quantizer.rtn on a CUDA device: the same rounding as rtn_kernel.hpp, computed so that
// the integer codes, scales and zero points equal the CPU's bit for bit (min and max do
// not depend on the order of a reduction, and every float step is rounded alone, with no
// fused multiply-add). Plain C++ callers see no CUDA types: streams are void*.
#pragma once

#include "rtn_kernel.hpp"

#include <shrink/cuda.hpp>

namespace rtn::cuda {

/// Device scratch (floats) quantize_device needs for these options.
uint64_t scratch_floats(uint64_t rows, uint64_t cols, const options& o);

/// Quantizes the device matrix w (rows x cols) into device q (rows*cols), scales and,
/// when asymmetric, zeros, sized as rtn::quantize sizes them. Launches on `stream` and
/// returns at once.
void quantize_device(const float* w, uint64_t rows, uint64_t cols, const options& o, int8_t* q, float* scales, int8_t* zeros,
                     float* scratch, void* stream);

/// rtn::quantize on the stage's GPU: uploads w, quantizes, downloads the result.
result quantize(const shrink::cuda_device& gpu, const float* w, uint64_t rows, uint64_t cols, const options& o);

}  // namespace rtn::cuda
