// The process's one oneDNN CPU engine, shared by every kernel in cpu/, and one stream
// per thread (the engine runs parts of a batch on several threads at once).
#pragma once

#include "cpu/kernel.hpp"
#include "cpu/layout.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

namespace shrink::cpu {

struct onednn_context {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    // Primitives of cpu::matmul, by (m, n, k, trans_a, trans_b, bias).
    std::map<std::tuple<int64_t, int64_t, int64_t, bool, bool, bool>, dnnl::matmul> matmul_cache;
    std::mutex mutex;
};

onednn_context& onednn();
/// The calling thread's stream on onednn().engine.
dnnl::stream& onednn_stream();

struct layout_desc {
    dnnl::memory::desc md;
};

/// `md` as a layout: plain when it is the plain (row-major) layout of its dims.
layout layout_of(const dnnl::memory::desc& md);
/// The descriptor of a layout: for a plain one, the row-major layout of `plain_dims`.
dnnl::memory::desc desc_of(const layout& l, const dnnl::memory::dims& plain_dims);

/// Attributes for a primitive that the engine may run at the same time as others (parts
/// of a batch on several threads): its scratchpad is its own, not oneDNN's global one,
/// which one thread may reallocate while another uses it.
dnnl::primitive_attr own_scratchpad(dnnl::primitive_attr attr = {});
/// Adds the scratchpad that a primitive made with own_scratchpad() needs, if any, to its
/// arguments.
void add_scratchpad(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory>& args);

/// Weights for a primitive: `data` (in layout `user`) reordered once into the layout
/// `wanted` that the primitive chose, in memory of their own.
dnnl::memory reordered_weights(const dnnl::memory::desc& user, const void* data, const dnnl::memory::desc& wanted);
/// A copy of `md.get_size()` bytes from `data`, in memory of its own (biases, scales).
dnnl::memory owned_copy(const dnnl::memory::desc& md, const float* data);

/// A kernel that is one primitive reading one activation buffer and writing another
/// (matmul, pooling, eltwise, batchnorm, softmax, reorders), made with own_scratchpad():
/// its memories are made once, a run only sets the data pointers. Fixed arguments
/// (weights, bias) go into `args` once. Its dst_layout is dst_md's.
struct unary_primitive : kernel::impl {
    unary_primitive(dnnl::primitive p, const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md);
    /// A reorder from src_md to dst_md.
    unary_primitive(const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md);
    void run(const float* src, float* dst) const override;

    dnnl::primitive primitive;
    mutable dnnl::memory src, dst;
    std::unordered_map<int, dnnl::memory> args;  // made once: a run only sets pointers
};

}  // namespace shrink::cpu
