// A per-channel scale and shift (inference batch normalization with its statistics
// folded in) on oneDNN, in any layout the engine carries.
#pragma once

#include "cpu/kernel.hpp"

#include <cstdint>

namespace shrink::cpu {

/// dst[n, c, ...] = src[n, c, ...] * scale[c] + shift[c] over `batch` samples of
/// `channels` x `inner` floats (plain), or in blocked layout `l`, which it writes too;
/// src == dst is allowed.
kernel make_batchnorm_kernel(int64_t batch, int64_t channels, int64_t inner, const float* scale, const float* shift,
                             const layout& l = {});

}  // namespace shrink::cpu
