#include "cpu/softmax.hpp"

#include "cpu/onednn_context.hpp"

namespace shrink::cpu {

kernel make_softmax_kernel(int64_t rows, int64_t width, bool log) {
    const dnnl::memory::desc md({rows, width}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nc);
    const auto kind = dnnl::prop_kind::forward_inference;
    const dnnl::engine& e = onednn().engine;
    dnnl::primitive p = log ? dnnl::primitive(dnnl::logsoftmax_forward(dnnl::logsoftmax_forward::primitive_desc({kind, md, 1}, own_scratchpad(), e)))
                            : dnnl::primitive(dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc({kind, md, 1}, own_scratchpad(), e)));
    return kernel(std::make_unique<unary_primitive>(std::move(p), md, md));
}

}  // namespace shrink::cpu
