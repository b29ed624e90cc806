// Softmax and log-softmax over each row of a batch, on oneDNN.
#pragma once

#include <cstdint>
#include <memory>

namespace shrink::cpu {

/// dst[r, :] = softmax(src[r, :]) (or its log) for `rows` rows of `width` floats; src ==
/// dst is allowed.
class softmax_kernel {
  public:
    softmax_kernel(int64_t rows, int64_t width, bool log);
    ~softmax_kernel();
    softmax_kernel(softmax_kernel&&) noexcept;
    void run(const float* src, float* dst) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace shrink::cpu
