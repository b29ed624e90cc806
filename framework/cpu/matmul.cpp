#include "cpu/matmul.hpp"

#include "cpu/onednn_context.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

namespace shrink::cpu {

using dt = dnnl::memory::data_type;

void matmul(const float* a, bool trans_a, const float* b, bool trans_b, float* dst, int64_t m, int64_t n, int64_t k,
            const float* bias) {
    onednn_context& c = onednn();
    const dnnl::memory::desc a_md({m, k}, dt::f32, trans_a ? dnnl::memory::dims{1, m} : dnnl::memory::dims{k, 1});
    const dnnl::memory::desc b_md({k, n}, dt::f32, trans_b ? dnnl::memory::dims{1, k} : dnnl::memory::dims{n, 1});
    const dnnl::memory::desc bias_md({1, n}, dt::f32, dnnl::memory::dims{n, 1});
    const dnnl::memory::desc dst_md({m, n}, dt::f32, dnnl::memory::dims{n, 1});

    std::lock_guard<std::mutex> lock(c.mutex);
    const std::tuple key{m, n, k, trans_a, trans_b, bias != nullptr};
    auto it = c.matmul_cache.find(key);
    if (it == c.matmul_cache.end()) {
        const dnnl::matmul::desc d = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, dst_md) : dnnl::matmul::desc(a_md, b_md, dst_md);
        it = c.matmul_cache.emplace(key, dnnl::matmul(dnnl::matmul::primitive_desc(d, c.engine))).first;
    }
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, dnnl::memory(a_md, c.engine, const_cast<float*>(a))},
        {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, c.engine, const_cast<float*>(b))},
        {DNNL_ARG_DST, dnnl::memory(dst_md, c.engine, dst)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, c.engine, const_cast<float*>(bias)));
    it->second.execute(onednn_stream(), args);
    onednn_stream().wait();
}

// Tiles start at 1024 x 1024 (large, so that packing the operands, redone per tile, stays
// small next to the product) and halve, the longer side first, down to 128 until there
// are at least 8 to share out; inside the parallel loop oneDNN runs single-threaded (it
// does not nest parallelism). plugins/linalg cuts its products the same way.
void matmul_fixed_order(const float* a, bool trans_a, const float* b, bool trans_b, float* dst, int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0) return;
    int64_t tm = std::min<int64_t>(1024, m), tn = std::min<int64_t>(1024, n);
    while ((m + tm - 1) / tm * ((n + tn - 1) / tn) < 8 && std::max(tm, tn) > 128) (tm >= tn ? tm : tn) = (std::max(tm, tn) + 1) / 2;
    const int64_t rows = (m + tm - 1) / tm, cols = (n + tn - 1) / tn;
    const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
    std::atomic<int> failed{int(dnnl_success)};
#pragma omp parallel for schedule(dynamic)
    for (int64_t t = 0; t < rows * cols; ++t) {
        const int64_t i0 = t / cols * tm, j0 = t % cols * tn;
        const float* at = trans_a ? a + i0 : a + i0 * lda;
        const float* bt = trans_b ? b + j0 * ldb : b + j0;
        const dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', std::min(tm, m - i0), std::min(tn, n - j0), k, 1.0f,
                                           at, lda, bt, ldb, 0.0f, dst + i0 * n + j0, n);
        if (s != dnnl_success) failed = int(s);
    }
    if (failed != int(dnnl_success)) throw std::runtime_error("oneDNN's sgemm failed (status " + std::to_string(failed.load()) + ")");
}

kernel make_linear_kernel(int64_t m, int64_t n, int64_t k, const float* weight, const float* bias, bool relu, bool in_place) {
    onednn_context& c = onednn();
    const dnnl::memory::desc src_md({m, k}, dt::f32, dnnl::memory::dims{k, 1});
    const dnnl::memory::desc user_w_md({k, n}, dt::f32, dnnl::memory::dims{1, k});  // [out, in] row-major
    const dnnl::memory::desc any_w_md({k, n}, dt::f32, dnnl::memory::format_tag::any);
    const dnnl::memory::desc b_md({1, n}, dt::f32, dnnl::memory::dims{n, 1});
    const dnnl::memory::desc dst_md({m, n}, dt::f32, dnnl::memory::dims{n, 1});
    dnnl::primitive_attr attr = own_scratchpad();
    if (relu) {
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
        attr.set_post_ops(ops);
    }
    const dnnl::memory::desc& w_md = in_place ? user_w_md : any_w_md;
    const dnnl::matmul::desc d = bias ? dnnl::matmul::desc(src_md, w_md, b_md, dst_md) : dnnl::matmul::desc(src_md, w_md, dst_md);
    const dnnl::matmul::primitive_desc pd(d, attr, c.engine);
    auto primitive = std::make_unique<unary_primitive>(dnnl::matmul(pd), src_md, dst_md);
    primitive->args.emplace(DNNL_ARG_WEIGHTS, in_place ? dnnl::memory(user_w_md, c.engine, const_cast<float*>(weight))
                                                       : reordered_weights(user_w_md, weight, pd.weights_desc()));
    if (bias) primitive->args.emplace(DNNL_ARG_BIAS, owned_copy(b_md, bias));
    return kernel(std::move(primitive));
}

const char* onednn_version() {
    static const std::string v = [] {
        const dnnl_version_t* ver = dnnl_version();
        return std::to_string(ver->major) + "." + std::to_string(ver->minor) + "." + std::to_string(ver->patch);
    }();
    return v.c_str();
}

}  // namespace shrink::cpu
