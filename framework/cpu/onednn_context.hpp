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

}  // namespace shrink::cpu
