// An activation as oneDNN names it, for an eltwise primitive or a post-op (internal to cpu/).
#pragma once

#include "cpu/eltwise.hpp"

#include <oneapi/dnnl/dnnl.hpp>

namespace shrink::cpu {

struct eltwise_post_op {
    dnnl::algorithm algorithm;
    float alpha, beta;
};

eltwise_post_op eltwise_algorithm(const activation& f);

}  // namespace shrink::cpu
