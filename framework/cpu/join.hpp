// Steps that read several activations (residual joins, branches): elementwise binary ops
// with broadcasting, and concatenation, on oneDNN.
#pragma once

#include "cpu/layout.hpp"
#include "model/ops.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shrink::cpu {

/// dst = a op b for op in add, sub, mul, div, over `batch` samples; a's per-sample shape
/// is `a_shape`, b's is `b_shape`, which broadcasts to it (right-aligned, sizes equal or
/// 1). a and dst share layout `a_layout`; b is in `b_layout`. dst == a is allowed.
class binary_kernel {
  public:
    binary_kernel(op_kind op, int64_t batch, const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape,
                  const layout& a_layout = {}, const layout& b_layout = {});
    ~binary_kernel();
    binary_kernel(binary_kernel&&) noexcept;
    void run(const float* a, const float* b, float* dst) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// dst = the inputs joined along per-sample `axis`, all plain; shapes are per sample.
class concat_kernel {
  public:
    concat_kernel(int64_t batch, const std::vector<std::vector<int64_t>>& shapes, int64_t axis);
    ~concat_kernel();
    concat_kernel(concat_kernel&&) noexcept;
    /// srcs: one pointer per input, in order.
    void run(const float* const* srcs, float* dst) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace shrink::cpu
