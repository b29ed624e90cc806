#include "cpu/softmax.hpp"

#include "cpu/onednn_context.hpp"

namespace shrink::cpu {

struct softmax_kernel::impl : unary_primitive {
    using unary_primitive::unary_primitive;
};

softmax_kernel::softmax_kernel(int64_t rows, int64_t width, bool log) {
    const dnnl::memory::desc md({rows, width}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nc);
    const auto kind = dnnl::prop_kind::forward_inference;
    const dnnl::engine& e = onednn().engine;
    dnnl::primitive p = log ? dnnl::primitive(dnnl::logsoftmax_forward(dnnl::logsoftmax_forward::primitive_desc({kind, md, 1}, own_scratchpad(), e)))
                            : dnnl::primitive(dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc({kind, md, 1}, own_scratchpad(), e)));
    impl_ = std::make_unique<impl>(std::move(p), md, md);
}

softmax_kernel::~softmax_kernel() = default;
softmax_kernel::softmax_kernel(softmax_kernel&&) noexcept = default;

void softmax_kernel::run(const float* src, float* dst) const { impl_->run(src, dst); }

}  // namespace shrink::cpu
