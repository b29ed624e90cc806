#include "cpu/batchnorm.hpp"

#include "cpu/onednn_context.hpp"

#include <vector>

namespace shrink::cpu {

kernel make_batchnorm_kernel(int64_t batch, int64_t channels, int64_t inner, const float* scale, const float* shift,
                             const layout& l) {
    using dt = dnnl::memory::data_type;
    const dnnl::memory::desc md = desc_of(l, {batch, channels, inner, 1});
    // oneDNN's batchnorm computes scale * (x - mean) / sqrt(variance + epsilon) + shift:
    // with mean 0, variance 1 and epsilon 0 that is scale * x + shift, exactly.
    const auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale_shift;
    const dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_inference, md, 0.0f, flags);
    auto k = std::make_unique<unary_primitive>(
        dnnl::batch_normalization_forward(dnnl::batch_normalization_forward::primitive_desc(d, own_scratchpad(), onednn().engine)), md, md);
    std::vector<float> scale_shift(scale, scale + channels);
    scale_shift.insert(scale_shift.end(), shift, shift + channels);
    const std::vector<float> mean(size_t(channels), 0.0f), variance(size_t(channels), 1.0f);
    const dnnl::memory::desc per_channel({channels}, dt::f32, dnnl::memory::format_tag::x);
    k->args.emplace(DNNL_ARG_SCALE_SHIFT, owned_copy(dnnl::memory::desc({2, channels}, dt::f32, dnnl::memory::format_tag::nc), scale_shift.data()));
    k->args.emplace(DNNL_ARG_MEAN, owned_copy(per_channel, mean.data()));
    k->args.emplace(DNNL_ARG_VARIANCE, owned_copy(per_channel, variance.data()));
    return kernel(std::move(k));
}

}  // namespace shrink::cpu
