#include "cpu/conv.hpp"

#include "cpu/eltwise_algorithm.hpp"
#include "cpu/onednn_context.hpp"

#include <algorithm>

namespace shrink::cpu {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::memory::desc nchw(int64_t n, int64_t c, int64_t h, int64_t w) { return dnnl::memory::desc({n, c, h, w}, dt::f32, tag::nchw); }

}  // namespace

struct conv_kernel::impl {
    dnnl::convolution_forward primitive;
    mutable dnnl::memory src, weight, bias, dst;  // src and dst: the caller's NCHW buffers
    dnnl::memory src_blocked, dst_blocked;        // the layouts the primitive chose, when not NCHW
    dnnl::reorder to_blocked, from_blocked;
    bool has_bias = false;
};

conv_kernel::conv_kernel(const window_shape& s, const float* weight, const float* bias, const activation& f)
    : impl_(std::make_unique<impl>()) {
    onednn_context& c = onednn();
    const dnnl::memory::desc src_md = nchw(s.batch, s.in_c, s.in_h, s.in_w);
    const dnnl::memory::desc dst_md = nchw(s.batch, s.out_c, s.out_h, s.out_w);
    const int64_t kh = s.kernel[0], kw = s.kernel[1];
    const dnnl::memory::desc user_w_md =
        s.group == 1 ? dnnl::memory::desc({s.out_c, s.in_c, kh, kw}, dt::f32, tag::oihw)
                     : dnnl::memory::desc({s.group, s.out_c / s.group, s.in_c / s.group, kh, kw}, dt::f32, tag::goihw);
    const dnnl::memory::desc any_w_md(user_w_md.dims(), dt::f32, tag::any);
    const dnnl::memory::desc b_md({s.out_c}, dt::f32, tag::x);
    // oneDNN counts dilation from 0 (no gaps), ONNX from 1.
    const dnnl::memory::dims strides{s.strides[0], s.strides[1]}, dilates{s.dilations[0] - 1, s.dilations[1] - 1};
    const dnnl::memory::dims pad_l{s.pads[0], s.pads[1]}, pad_r{s.pads[2], s.pads[3]};
    dnnl::primitive_attr attr;
    if (f) {
        const eltwise_post_op alg = eltwise_algorithm(f);
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, alg.algorithm, alg.alpha, alg.beta);
        attr.set_post_ops(ops);
    }
    // The primitive picks its activation layouts too: on plain NCHW, oneDNN falls back to
    // im2col and GEMM, about 5x slower here than its direct kernels on blocked layouts
    // (measured with bench/compare_runtime.sh); reordering in and out costs far less.
    const dnnl::memory::desc any_src_md(src_md.dims(), dt::f32, tag::any), any_dst_md(dst_md.dims(), dt::f32, tag::any);
    // Direct convolution, never Winograd: its results do not depend on a heuristic's choice.
    const auto d = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                          any_src_md, any_w_md, b_md, any_dst_md, strides, dilates, pad_l, pad_r)
                        : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                          any_src_md, any_w_md, any_dst_md, strides, dilates, pad_l, pad_r);
    const dnnl::convolution_forward::primitive_desc pd(d, attr, c.engine);
    impl_->primitive = dnnl::convolution_forward(pd);
    dnnl::memory user_w(user_w_md, c.engine, const_cast<float*>(weight));
    impl_->weight = dnnl::memory(pd.weights_desc(), c.engine);
    dnnl::reorder(user_w, impl_->weight).execute(c.stream, user_w, impl_->weight);
    c.stream.wait();
    impl_->src = dnnl::memory(src_md, c.engine, DNNL_MEMORY_NONE);
    impl_->dst = dnnl::memory(dst_md, c.engine, DNNL_MEMORY_NONE);
    if (pd.src_desc() != src_md) {
        impl_->src_blocked = dnnl::memory(pd.src_desc(), c.engine);
        impl_->to_blocked = dnnl::reorder(impl_->src, impl_->src_blocked);
    }
    if (pd.dst_desc() != dst_md) {
        impl_->dst_blocked = dnnl::memory(pd.dst_desc(), c.engine);
        impl_->from_blocked = dnnl::reorder(impl_->dst_blocked, impl_->dst);
    }
    if (bias) {
        impl_->bias = dnnl::memory(b_md, c.engine);
        std::copy(bias, bias + s.out_c, static_cast<float*>(impl_->bias.get_data_handle()));
        impl_->has_bias = true;
    }
}

conv_kernel::~conv_kernel() = default;
conv_kernel::conv_kernel(conv_kernel&&) noexcept = default;

void conv_kernel::run(const float* src, float* dst) const {
    onednn_context& c = onednn();
    impl_->src.set_data_handle(const_cast<float*>(src));
    impl_->dst.set_data_handle(dst);
    const bool reorder_in = bool(impl_->src_blocked), reorder_out = bool(impl_->dst_blocked);
    if (reorder_in) impl_->to_blocked.execute(c.stream, impl_->src, impl_->src_blocked);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, reorder_in ? impl_->src_blocked : impl_->src},
                                               {DNNL_ARG_WEIGHTS, impl_->weight},
                                               {DNNL_ARG_DST, reorder_out ? impl_->dst_blocked : impl_->dst}};
    if (impl_->has_bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
    impl_->primitive.execute(c.stream, args);
    if (reorder_out) impl_->from_blocked.execute(c.stream, impl_->dst_blocked, impl_->dst);
    c.stream.wait();
}

struct pool_kernel::impl : unary_primitive {
    using unary_primitive::unary_primitive;
};

pool_kernel::pool_kernel(const window_shape& s, pooling kind) {
    const dnnl::memory::desc src_md = nchw(s.batch, s.in_c, s.in_h, s.in_w);
    const dnnl::memory::desc dst_md = nchw(s.batch, s.out_c, s.out_h, s.out_w);
    const dnnl::algorithm alg = kind == pooling::max       ? dnnl::algorithm::pooling_max
                                : kind == pooling::average ? dnnl::algorithm::pooling_avg_exclude_padding
                                                           : dnnl::algorithm::pooling_avg_include_padding;
    const dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md, dst_md, {s.strides[0], s.strides[1]},
                                        {s.kernel[0], s.kernel[1]}, {s.pads[0], s.pads[1]}, {s.pads[2], s.pads[3]});
    impl_ = std::make_unique<impl>(dnnl::pooling_forward(dnnl::pooling_forward::primitive_desc(d, onednn().engine)), src_md, dst_md);
}

pool_kernel::~pool_kernel() = default;
pool_kernel::pool_kernel(pool_kernel&&) noexcept = default;

void pool_kernel::run(const float* src, float* dst) const { impl_->run(src, dst); }

}  // namespace shrink::cpu
