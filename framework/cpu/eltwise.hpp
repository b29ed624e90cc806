// Elementwise activations on oneDNN, run alone or fused into a conv as a post-op.
#pragma once

#include "cpu/kernel.hpp"
#include "model/ops.hpp"

#include <cstdint>
#include <optional>

namespace shrink::cpu {

/// An activation function: an elementwise op of the op table (model/ops.def; none when
/// empty); leaky_relu's slope is alpha, clip keeps [alpha, beta].
struct activation {
    std::optional<op_kind> op;
    float alpha = 0, beta = 0;
    explicit operator bool() const { return op.has_value(); }
};

/// True for the ops `activation` can hold: the table's elementwise ones.
bool is_activation(op_kind op);

/// dst = f(src) over `count` floats, or over an activation in blocked layout `l` (whose
/// padding stays untouched); src == dst is allowed. Writes `l`.
kernel make_eltwise_kernel(int64_t count, const activation& f, const layout& l = {});

}  // namespace shrink::cpu
