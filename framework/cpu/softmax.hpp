// Softmax and log-softmax over each row of a batch, on oneDNN.
#pragma once

#include "cpu/kernel.hpp"

#include <cstdint>

namespace shrink::cpu {

/// dst[r, :] = softmax(src[r, :]) (or its log) for `rows` rows of `width` floats; src ==
/// dst is allowed. Plain in, plain out.
kernel make_softmax_kernel(int64_t rows, int64_t width, bool log);

}  // namespace shrink::cpu
