// The process's one oneDNN CPU engine and stream, shared by every kernel in cpu/.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <mutex>
#include <tuple>

namespace shrink::cpu {

struct onednn_context {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    // Primitives of cpu::matmul, by (m, n, k, trans_a, trans_b, bias).
    std::map<std::tuple<int64_t, int64_t, int64_t, bool, bool, bool>, dnnl::matmul> matmul_cache;
    std::mutex mutex;
};

onednn_context& onednn();

/// A primitive that reads one activation buffer and writes another (pooling, eltwise):
/// its memories are made once, a run only sets the data pointers.
struct unary_primitive {
    unary_primitive(dnnl::primitive p, const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md);
    void run(const float* src, float* dst) const;

    dnnl::primitive primitive;
    mutable dnnl::memory src, dst;
};

}  // namespace shrink::cpu
