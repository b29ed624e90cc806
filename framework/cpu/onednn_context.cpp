#include "cpu/onednn_context.hpp"

namespace shrink::cpu {

onednn_context& onednn() {
    static onednn_context c;
    return c;
}

unary_primitive::unary_primitive(dnnl::primitive p, const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md)
    : primitive(std::move(p)), src(src_md, onednn().engine, DNNL_MEMORY_NONE), dst(dst_md, onednn().engine, DNNL_MEMORY_NONE) {}

void unary_primitive::run(const float* from, float* to) const {
    onednn_context& c = onednn();
    src.set_data_handle(const_cast<float*>(from));
    dst.set_data_handle(to);
    primitive.execute(c.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    c.stream.wait();
}

}  // namespace shrink::cpu
