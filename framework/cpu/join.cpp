#include "cpu/join.hpp"

#include "cpu/onednn_context.hpp"

#include <stdexcept>

namespace shrink::cpu {

namespace {

dnnl::memory::dims batch_dims(int64_t batch, const std::vector<int64_t>& shape) {
    dnnl::memory::dims d{batch};
    d.insert(d.end(), shape.begin(), shape.end());
    return d;
}

}  // namespace

struct binary_kernel::impl {
    dnnl::binary primitive;
    mutable dnnl::memory a, b, dst;
    std::unordered_map<int, dnnl::memory> args;  // made once: a run only sets pointers
};

namespace {
dnnl::algorithm binary_algorithm(op_kind op) {
    using a = dnnl::algorithm;
    switch (op) {
        case op_kind::add: return a::binary_add;
        case op_kind::sub: return a::binary_sub;
        case op_kind::mul: return a::binary_mul;
        case op_kind::div: return a::binary_div;
        default: break;  // not one of these: refused below
    }
    throw std::invalid_argument(std::string("'") + op_of(op).name + "' is not a binary op");
}
}  // namespace

binary_kernel::binary_kernel(op_kind op, int64_t batch, const std::vector<int64_t>& a_shape,
                             const std::vector<int64_t>& b_shape, const layout& a_layout, const layout& b_layout)
    : impl_(std::make_unique<impl>()) {
    const dnnl::algorithm alg = binary_algorithm(op);
    // b takes a's rank, with size-1 dimensions in front (its broadcast, as oneDNN wants it).
    std::vector<int64_t> b_full(a_shape.size() - b_shape.size(), 1);
    b_full.insert(b_full.end(), b_shape.begin(), b_shape.end());
    const dnnl::memory::desc a_md = desc_of(a_layout, batch_dims(batch, a_shape));
    const dnnl::memory::desc b_md = desc_of(b_layout, batch_dims(batch, b_full));
    const dnnl::binary::primitive_desc pd(dnnl::binary::desc(alg, a_md, b_md, a_md), own_scratchpad(), onednn().engine);
    impl_->primitive = dnnl::binary(pd);
    impl_->a = dnnl::memory(a_md, onednn().engine, DNNL_MEMORY_NONE);
    impl_->b = dnnl::memory(b_md, onednn().engine, DNNL_MEMORY_NONE);
    impl_->dst = dnnl::memory(a_md, onednn().engine, DNNL_MEMORY_NONE);
    impl_->args = {{DNNL_ARG_SRC_0, impl_->a}, {DNNL_ARG_SRC_1, impl_->b}, {DNNL_ARG_DST, impl_->dst}};
    add_scratchpad(impl_->primitive, impl_->args);
}

binary_kernel::~binary_kernel() = default;
binary_kernel::binary_kernel(binary_kernel&&) noexcept = default;

void binary_kernel::run(const float* a, const float* b, float* dst) const {
    impl_->a.set_data_handle(const_cast<float*>(a));
    impl_->b.set_data_handle(const_cast<float*>(b));
    impl_->dst.set_data_handle(dst);
    impl_->primitive.execute(onednn_stream(), impl_->args);
    onednn_stream().wait();
}

struct concat_kernel::impl {
    dnnl::concat primitive;
    mutable std::vector<dnnl::memory> srcs;
    mutable dnnl::memory dst;
    std::unordered_map<int, dnnl::memory> args;  // made once: a run only sets pointers
};

concat_kernel::concat_kernel(int64_t batch, const std::vector<std::vector<int64_t>>& shapes, int64_t axis)
    : impl_(std::make_unique<impl>()) {
    std::vector<dnnl::memory::desc> mds;
    for (const auto& shape : shapes) mds.push_back(desc_of(layout(), batch_dims(batch, shape)));
    dnnl::memory::dims out = mds[0].dims();
    for (size_t i = 1; i < mds.size(); ++i) out[size_t(axis + 1)] += mds[i].dims()[size_t(axis + 1)];
    const dnnl::memory::desc dst_md = desc_of(layout(), out);
    const dnnl::concat::primitive_desc pd(dst_md, int(axis + 1), mds, onednn().engine, own_scratchpad());
    impl_->primitive = dnnl::concat(pd);
    for (size_t i = 0; i < mds.size(); ++i) {
        impl_->srcs.push_back(dnnl::memory(mds[i], onednn().engine, DNNL_MEMORY_NONE));
        impl_->args.emplace(DNNL_ARG_MULTIPLE_SRC + int(i), impl_->srcs.back());
    }
    impl_->dst = dnnl::memory(dst_md, onednn().engine, DNNL_MEMORY_NONE);
    impl_->args.emplace(DNNL_ARG_DST, impl_->dst);
    add_scratchpad(impl_->primitive, impl_->args);
}

concat_kernel::~concat_kernel() = default;
concat_kernel::concat_kernel(concat_kernel&&) noexcept = default;

void concat_kernel::run(const float* const* srcs, float* dst) const {
    for (size_t i = 0; i < impl_->srcs.size(); ++i) impl_->srcs[i].set_data_handle(const_cast<float*>(srcs[i]));
    impl_->dst.set_data_handle(dst);
    impl_->primitive.execute(onednn_stream(), impl_->args);
    onednn_stream().wait();
}

}  // namespace shrink::cpu
