#include "cpu/eltwise.hpp"

#include "cpu/eltwise_algorithm.hpp"
#include "cpu/onednn_context.hpp"

#include <stdexcept>

namespace shrink::cpu {

bool is_activation(const std::string& op) {
    return op == "relu" || op == "leaky_relu" || op == "sigmoid" || op == "tanh" || op == "gelu" || op == "gelu_tanh" ||
           op == "clip";
}

eltwise_post_op eltwise_algorithm(const activation& f) {
    using a = dnnl::algorithm;
    if (f.op == "relu") return {a::eltwise_relu, 0, 0};
    if (f.op == "leaky_relu") return {a::eltwise_relu, f.alpha, 0};
    if (f.op == "sigmoid") return {a::eltwise_logistic, 0, 0};
    if (f.op == "tanh") return {a::eltwise_tanh, 0, 0};
    if (f.op == "gelu") return {a::eltwise_gelu_erf, 0, 0};
    if (f.op == "gelu_tanh") return {a::eltwise_gelu_tanh, 0, 0};
    // clip_v2 is min(max(x, lo), hi), ONNX's Clip; oneDNN's older clip is lo < x <= hi.
    if (f.op == "clip") return {a::eltwise_clip_v2, f.alpha, f.beta};
    throw std::invalid_argument("'" + f.op + "' is not an activation");
}

kernel make_eltwise_kernel(int64_t count, const activation& f, const layout& l) {
    const eltwise_post_op alg = eltwise_algorithm(f);
    const dnnl::memory::desc md = desc_of(l, {count});
    const dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg.algorithm, md, alg.alpha, alg.beta);
    return kernel(std::make_unique<unary_primitive>(
        dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, own_scratchpad(), onednn().engine)), md, md));
}

}  // namespace shrink::cpu
