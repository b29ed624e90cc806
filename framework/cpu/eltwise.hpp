// Elementwise activations on oneDNN, run alone or fused into a conv as a post-op.
#pragma once

#include "cpu/kernel.hpp"

#include <cstdint>
#include <string>

namespace shrink::cpu {

/// An activation function: `op` is a model op name ("relu", "leaky_relu", "sigmoid",
/// "tanh", "gelu", "gelu_tanh", "clip"; empty = none); leaky_relu's slope is alpha, clip keeps
/// [alpha, beta].
struct activation {
    std::string op;
    float alpha = 0, beta = 0;
    explicit operator bool() const { return !op.empty(); }
};

/// True for the ops `activation` can hold.
bool is_activation(const std::string& op);

/// dst = f(src) over `count` floats, or over an activation in blocked layout `l` (whose
/// padding stays untouched); src == dst is allowed. Writes `l`.
kernel make_eltwise_kernel(int64_t count, const activation& f, const layout& l = {});

}  // namespace shrink::cpu
