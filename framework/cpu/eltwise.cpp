#include "cpu/eltwise.hpp"

#include "cpu/eltwise_algorithm.hpp"
#include "cpu/onednn_context.hpp"

#include <stdexcept>

namespace shrink::cpu {

bool is_activation(op_kind op) { return op_of(op).has(OP_ELEMENTWISE); }

eltwise_post_op eltwise_algorithm(const activation& f) {
    using a = dnnl::algorithm;
    if (!f.op) throw std::invalid_argument("no activation");
    switch (*f.op) {
        case op_kind::relu: return {a::eltwise_relu, 0, 0};
        case op_kind::leaky_relu: return {a::eltwise_relu, f.alpha, 0};
        case op_kind::sigmoid: return {a::eltwise_logistic, 0, 0};
        case op_kind::tanh: return {a::eltwise_tanh, 0, 0};
        case op_kind::gelu: return {a::eltwise_gelu_erf, 0, 0};
        case op_kind::gelu_tanh: return {a::eltwise_gelu_tanh, 0, 0};
        case op_kind::silu: return {a::eltwise_swish, 1, 0};  // x * sigmoid(1 * x)
        // clip_v2 is min(max(x, lo), hi), ONNX's Clip; oneDNN's older clip is lo < x <= hi.
        case op_kind::clip: return {a::eltwise_clip_v2, f.alpha, f.beta};
        default: break;  // not one of these: refused below
    }
    throw std::invalid_argument(std::string("'") + op_of(*f.op).name + "' is not an activation");
}

kernel make_eltwise_kernel(int64_t count, const activation& f, const layout& l) {
    const eltwise_post_op alg = eltwise_algorithm(f);
    const dnnl::memory::desc md = desc_of(l, {count});
    const dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg.algorithm, md, alg.alpha, alg.beta);
    return kernel(std::make_unique<unary_primitive>(
        dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, own_scratchpad(), onednn().engine)), md, md));
}

}  // namespace shrink::cpu
