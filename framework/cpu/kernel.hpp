// One step's kernel for one batch size: reads one activation and writes another, in
// layouts fixed when it is made (by make_conv_kernel, make_pool_kernel and the other
// make_*_kernel functions of cpu/). Its oneDNN primitive and memories are made once; a
// run only sets the data pointers.
#pragma once

#include "cpu/layout.hpp"

#include <memory>

namespace shrink::cpu {

class kernel {
  public:
    /// What a kernel runs (cpu/onednn_context.hpp has the usual one, a single primitive).
    struct impl {
        virtual ~impl() = default;
        virtual void run(const float* src, float* dst) const = 0;
        layout dst_layout;
    };

    explicit kernel(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
    /// dst = f(src); src == dst is allowed where the maker says so.
    void run(const float* src, float* dst) const { impl_->run(src, dst); }
    /// The layout the kernel writes.
    const layout& dst_layout() const { return impl_->dst_layout; }

  private:
    std::unique_ptr<impl> impl_;
};

/// Reads an activation in blocked layout `from` and writes it plain (NCHW).
kernel make_to_plain_kernel(const layout& from);

}  // namespace shrink::cpu
