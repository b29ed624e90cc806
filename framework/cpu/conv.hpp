// Convolution and pooling over float activations on oneDNN, created once per batch size
// and run many times (like linear_kernel): weights are reordered at creation into the
// layout the primitive prefers; a run only sets the activation pointers. Each takes its
// input in the layout it comes in (cpu/layout.hpp) and says which layout it writes.
#pragma once

#include "cpu/eltwise.hpp"
#include "cpu/layout.hpp"

#include <array>
#include <cstdint>
#include <memory>

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

/// dst = f(conv(src, weight) + bias); weight is [out_c, in_c/group, kh, kw]. dst is in
/// the layout oneDNN's fastest direct kernel writes, or plain when `plain_dst`.
class conv_kernel {
  public:
    conv_kernel(const window_shape& s, const float* weight, const float* bias, const activation& f, const layout& src = {},
                bool plain_dst = true);
    ~conv_kernel();
    conv_kernel(conv_kernel&&) noexcept;
    void run(const float* src, float* dst) const;
    const layout& dst_layout() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

enum class pooling { max, average, average_with_pad };

/// dst = pool(src) over each channel's windows; dst is in src's layout.
class pool_kernel {
  public:
    pool_kernel(const window_shape& s, pooling kind, const layout& src = {});
    ~pool_kernel();
    pool_kernel(pool_kernel&&) noexcept;
    void run(const float* src, float* dst) const;
    const layout& dst_layout() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace shrink::cpu
