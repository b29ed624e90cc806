#include "cpu/conv.hpp"

#include "cpu/eltwise_algorithm.hpp"
#include "cpu/onednn_context.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace shrink::cpu {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::memory::desc nchw(int64_t n, int64_t c, int64_t h, int64_t w) { return dnnl::memory::desc({n, c, h, w}, dt::f32, tag::nchw); }

// The conv primitive, and where it wants other layouts than the caller's, conversions
// in and out through buffers of its own.
struct conv_with_conversions : kernel::impl {
    std::unique_ptr<unary_primitive> conv, convert_src, convert_dst;
    mutable std::vector<float> src_converted, dst_converted;

    void run(const float* src, float* dst) const override {
        if (convert_src) convert_src->run(src, src_converted.data());
        conv->run(convert_src ? src_converted.data() : src, convert_dst ? dst_converted.data() : dst);
        if (convert_dst) convert_dst->run(dst_converted.data(), dst);
    }
};

}  // namespace

kernel make_conv_kernel(const window_shape& s, const float* weight, const float* bias, const activation& f, const layout& src,
                        bool plain_dst) {
    onednn_context& c = onednn();
    const dnnl::memory::desc src_md = desc_of(src, {s.batch, s.in_c, s.in_h, s.in_w});
    const dnnl::memory::desc plain_dst_md = nchw(s.batch, s.out_c, s.out_h, s.out_w);
    const int64_t kh = s.kernel[0], kw = s.kernel[1];
    const dnnl::memory::desc user_w_md =
        s.group == 1 ? dnnl::memory::desc({s.out_c, s.in_c, kh, kw}, dt::f32, tag::oihw)
                     : dnnl::memory::desc({s.group, s.out_c / s.group, s.in_c / s.group, kh, kw}, dt::f32, tag::goihw);
    const dnnl::memory::desc any_w_md(user_w_md.dims(), dt::f32, tag::any);
    const dnnl::memory::desc b_md({s.out_c}, dt::f32, tag::x);
    // oneDNN counts dilation from 0 (no gaps), ONNX from 1.
    const dnnl::memory::dims strides{s.strides[0], s.strides[1]}, dilates{s.dilations[0] - 1, s.dilations[1] - 1};
    const dnnl::memory::dims pad_l{s.pads[0], s.pads[1]}, pad_r{s.pads[2], s.pads[3]};
    dnnl::primitive_attr attr = own_scratchpad();
    if (f) {
        const eltwise_post_op alg = eltwise_algorithm(f);
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, alg.algorithm, alg.alpha, alg.beta);
        attr.set_post_ops(ops);
    }
    auto describe = [&](const dnnl::memory::desc& in, const dnnl::memory::desc& out) {
        // Direct convolution, never Winograd: its results do not depend on a heuristic's choice.
        const auto d = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                              in, any_w_md, b_md, out, strides, dilates, pad_l, pad_r)
                            : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                              in, any_w_md, out, strides, dilates, pad_l, pad_r);
        return dnnl::convolution_forward::primitive_desc(d, attr, c.engine);
    };
    // Layouts in order of preference: the input as it comes and the output as asked, then
    // the output in the layout oneDNN picks, then both. Plain layouts send oneDNN to im2col
    // and GEMM, several times slower here than its direct kernels on blocked layouts
    // (bench/compare_runtime.sh), so a choice that lands on GEMM (or the reference
    // kernel) gives way to the next, where converting the layouts costs far less.
    const dnnl::memory::desc any_src_md(src_md.dims(), dt::f32, tag::any), any_dst_md(plain_dst_md.dims(), dt::f32, tag::any);
    const std::pair<dnnl::memory::desc, dnnl::memory::desc> choices[] = {
        {src_md, plain_dst ? plain_dst_md : any_dst_md}, {src_md, any_dst_md}, {any_src_md, any_dst_md}};
    std::optional<dnnl::convolution_forward::primitive_desc> pd;
    for (const auto& [in, out] : choices) {
        pd = describe(in, out);
        const std::string impl = pd->impl_info_str();
        if (impl.find("gemm") == std::string::npos && impl.find("ref") == std::string::npos) break;
    }
    auto k = std::make_unique<conv_with_conversions>();
    k->conv = std::make_unique<unary_primitive>(dnnl::convolution_forward(*pd), pd->src_desc(), pd->dst_desc());
    k->conv->args.emplace(DNNL_ARG_WEIGHTS, reordered_weights(user_w_md, weight, pd->weights_desc()));
    if (bias) k->conv->args.emplace(DNNL_ARG_BIAS, owned_copy(b_md, bias));
    const dnnl::memory::desc dst_md = plain_dst ? plain_dst_md : pd->dst_desc();
    k->dst_layout = layout_of(dst_md);
    if (pd->src_desc() != src_md) {
        k->convert_src = std::make_unique<unary_primitive>(src_md, pd->src_desc());
        k->src_converted.resize(pd->src_desc().get_size() / sizeof(float));
    }
    if (pd->dst_desc() != dst_md) {
        k->convert_dst = std::make_unique<unary_primitive>(pd->dst_desc(), dst_md);
        k->dst_converted.resize(pd->dst_desc().get_size() / sizeof(float));
    }
    return kernel(std::move(k));
}

kernel make_pool_kernel(const window_shape& s, pooling kind, const layout& src) {
    // The output takes the input's layout: pooling works channel by channel in any.
    const dnnl::memory::desc src_md = desc_of(src, {s.batch, s.in_c, s.in_h, s.in_w});
    const dnnl::memory::desc dst_md = src.plain() ? nchw(s.batch, s.out_c, s.out_h, s.out_w)
                                                  : dnnl::memory::desc({s.batch, s.out_c, s.out_h, s.out_w}, dt::f32, tag::any);
    const dnnl::algorithm alg = kind == pooling::max       ? dnnl::algorithm::pooling_max
                                : kind == pooling::average ? dnnl::algorithm::pooling_avg_exclude_padding
                                                           : dnnl::algorithm::pooling_avg_include_padding;
    const dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md, dst_md, {s.strides[0], s.strides[1]},
                                        {s.kernel[0], s.kernel[1]}, {s.pads[0], s.pads[1]}, {s.pads[2], s.pads[3]});
    const dnnl::pooling_forward::primitive_desc pd(d, own_scratchpad(), onednn().engine);
    return kernel(std::make_unique<unary_primitive>(dnnl::pooling_forward(pd), src_md, pd.dst_desc()));
}

}  // namespace shrink::cpu
