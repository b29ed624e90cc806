#include "cpu/int8_linear.hpp"

#include "cpu/onednn_context.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace shrink::cpu {

namespace {

using dt = dnnl::memory::data_type;

struct int8_linear : kernel::impl {
    int64_t m, n, k;
    u8_grid grid;
    std::vector<float> bias;
    bool relu;
    dnnl::matmul primitive;
    mutable std::vector<uint8_t> codes_in;  // the input on its u8 grid
    mutable dnnl::memory src, dst;
    mutable std::unordered_map<int, dnnl::memory> args;

    void run(const float* from, float* to) const override {
        // The same rounding as the simulated path (cpu/engine.cpp), so both agree on every code.
        const float zero = float(grid.zero_point);
        uint8_t* q = codes_in.data();
#pragma omp parallel for schedule(static) if (m * k >= 65536)
        for (int64_t i = 0; i < m * k; ++i) q[i] = uint8_t(std::clamp(std::nearbyint(from[i] / grid.scale) + zero, 0.0f, 255.0f));
        dst.set_data_handle(to);
        primitive.execute(onednn_stream(), args);
        onednn_stream().wait();
        const float* b = bias.data();
#pragma omp parallel for schedule(static) if (m * n >= 65536)
        for (int64_t r = 0; r < m; ++r) {
            float* row = to + r * n;
            for (int64_t c = 0; c < n; ++c) row[c] = relu ? std::max(0.0f, row[c] + b[c]) : row[c] + b[c];
        }
    }
};

}  // namespace

bool int8_matmul_exact() {
    static const bool exact = [] {
        switch (dnnl::get_effective_cpu_isa()) {
            case dnnl::cpu_isa::avx2_vnni:
            case dnnl::cpu_isa::avx512_core_vnni:
            case dnnl::cpu_isa::avx512_core_bf16:
            case dnnl::cpu_isa::avx512_core_amx:
                return true;
            default:
                return false;
        }
    }();
    return exact;
}

kernel make_int8_linear_kernel(int64_t m, int64_t n, int64_t k, const int8_t* codes, const float* row_scales, u8_grid grid,
                               const float* bias, bool relu) {
    onednn_context& c = onednn();
    auto impl = std::make_unique<int8_linear>();
    impl->m = m, impl->n = n, impl->k = k, impl->grid = grid, impl->relu = relu;
    impl->bias.assign(bias, bias + n);
    const dnnl::memory::desc src_md({m, k}, dt::u8, dnnl::memory::dims{k, 1});
    const dnnl::memory::desc user_w_md({k, n}, dt::s8, dnnl::memory::dims{1, k});  // [out, in] row-major
    const dnnl::memory::desc any_w_md({k, n}, dt::s8, dnnl::memory::format_tag::any);
    const dnnl::memory::desc dst_md({m, n}, dt::f32, dnnl::memory::dims{n, 1});
    // Each output column's scale: the input grid's times its weight row's. The bias is added
    // after, in float, so its meaning does not depend on how oneDNN orders scale and bias.
    std::vector<float> scales(row_scales, row_scales + n);
    for (float& s : scales) s *= grid.scale;
    dnnl::primitive_attr attr = own_scratchpad();
    attr.set_output_scales(1 << 1, scales);
    attr.set_zero_points(DNNL_ARG_SRC, 0, {grid.zero_point});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_w_md, dst_md), attr, c.engine);
    impl->primitive = dnnl::matmul(pd);
    impl->codes_in.resize(size_t(m * k));
    impl->src = dnnl::memory(src_md, c.engine, impl->codes_in.data());
    impl->dst = dnnl::memory(dst_md, c.engine, DNNL_MEMORY_NONE);
    impl->args = {{DNNL_ARG_SRC, impl->src},
                  {DNNL_ARG_WEIGHTS, reordered_weights(user_w_md, codes, pd.weights_desc())},
                  {DNNL_ARG_DST, impl->dst}};
    add_scratchpad(impl->primitive, impl->args);
    impl->dst_layout = layout();
    return kernel(std::move(impl));
}

}  // namespace shrink::cpu
