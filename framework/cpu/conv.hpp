// Convolution and pooling kernels (cpu/kernel.hpp) over float activations on oneDNN:
// weights are reordered at creation into the layout the primitive prefers. Each takes
// its input in the layout it comes in (cpu/layout.hpp) and says which layout it writes.
#pragma once

#include "cpu/eltwise.hpp"
#include "cpu/kernel.hpp"

#include <array>
#include <cstdint>

namespace shrink::cpu {

/// The geometry of one conv or pooling layer for a batch.
struct window_shape {
    int64_t batch = 1;
    int64_t in_c = 1, in_h = 1, in_w = 1;
    int64_t out_c = 1, out_h = 1, out_w = 1;
    std::array<int64_t, 2> kernel{1, 1};
    std::array<int64_t, 2> strides{1, 1};
    std::array<int64_t, 4> pads{0, 0, 0, 0};  // top, left, bottom, right
    std::array<int64_t, 2> dilations{1, 1};
    int64_t group = 1;
};

/// dst = f(conv(src, weight) + bias); weight is [out_c, in_c/group, kh, kw]. Reads src
/// in layout `src`; writes the layout oneDNN's fastest direct kernel writes, or plain
/// when `plain_dst`.
kernel make_conv_kernel(const window_shape& s, const float* weight, const float* bias, const activation& f, const layout& src = {},
                        bool plain_dst = true);

enum class pooling { max, average, average_with_pad };

/// dst = pool(src) over each channel's windows; dst is in src's layout.
kernel make_pool_kernel(const window_shape& s, pooling kind, const layout& src = {});

}  // namespace shrink::cpu
