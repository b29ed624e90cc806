// A per-channel scale and shift (inference batch normalization with its statistics
// folded in) on oneDNN, in any layout the engine carries.
#pragma once

#include "cpu/layout.hpp"

#include <cstdint>
#include <memory>

namespace shrink::cpu {

/// dst[n, c, ...] = src[n, c, ...] * scale[c] + shift[c] over `batch` samples of
/// `channels` x `inner` floats (plain), or in blocked layout `l`; src == dst is allowed.
class batchnorm_kernel {
  public:
    batchnorm_kernel(int64_t batch, int64_t channels, int64_t inner, const float* scale, const float* shift, const layout& l = {});
    ~batchnorm_kernel();
    batchnorm_kernel(batchnorm_kernel&&) noexcept;
    void run(const float* src, float* dst) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace shrink::cpu
