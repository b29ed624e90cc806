#include "cpu/onednn_context.hpp"

#include <algorithm>

namespace shrink::cpu {

onednn_context& onednn() {
    static onednn_context c;
    return c;
}

dnnl::stream& onednn_stream() {
    thread_local dnnl::stream s(onednn().engine);
    return s;
}

namespace {
dnnl::memory::desc plain_desc(const dnnl::memory::dims& dims) {
    dnnl::memory::dims strides(dims.size(), 1);
    for (size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
    return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}
}  // namespace

layout layout_of(const dnnl::memory::desc& md) {
    if (md == plain_desc(md.dims())) return layout();
    return layout(std::make_shared<const layout_desc>(layout_desc{md}));
}

dnnl::memory::desc desc_of(const layout& l, const dnnl::memory::dims& plain_dims) {
    return l.plain() ? plain_desc(plain_dims) : l.desc()->md;
}

bool layout::operator==(const layout& other) const {
    if (plain() || other.plain()) return plain() == other.plain();
    return desc_->md == other.desc_->md;
}

bool layout::fits(int64_t rows, const std::vector<int64_t>& shape) const {
    if (plain()) return true;
    dnnl::memory::dims want{rows};
    want.insert(want.end(), shape.begin(), shape.end());
    return desc_->md.dims() == want;
}

int64_t layout::floats() const { return desc_ ? int64_t(desc_->md.get_size() / sizeof(float)) : 0; }

std::vector<int64_t> sample_order(const layout& l, int64_t rows, int64_t per_sample) {
    // Floats count integers exactly below 2^24; past that, or with padding, give up.
    const int64_t total = rows * per_sample;
    if (l.plain() || l.floats() != total || total >= (int64_t(1) << 24)) return {};
    std::vector<float> index(static_cast<size_t>(total)), shuffled(static_cast<size_t>(total));
    for (int64_t i = 0; i < total; ++i) index[size_t(i)] = float(i);
    const dnnl::memory::desc blocked = l.desc()->md, plain = plain_desc(blocked.dims());
    dnnl::memory from(plain, onednn().engine, index.data()), to(blocked, onednn().engine, shuffled.data());
    dnnl::reorder(from, to).execute(onednn_stream(), from, to);
    onednn_stream().wait();
    std::vector<int64_t> order(static_cast<size_t>(per_sample));
    for (int64_t j = 0; j < per_sample; ++j) order[size_t(j)] = int64_t(shuffled[size_t(j)]);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < per_sample; ++j)
            if (int64_t(shuffled[size_t(r * per_sample + j)]) != r * per_sample + order[size_t(j)]) return {};
    return order;
}

kernel make_to_plain_kernel(const layout& from) {
    const dnnl::memory::desc src = from.desc()->md;
    return kernel(std::make_unique<unary_primitive>(src, plain_desc(src.dims())));
}

dnnl::primitive_attr own_scratchpad(dnnl::primitive_attr attr) {
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

void add_scratchpad(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory>& args) {
    const dnnl_memory_desc_t* md = dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
    if (!md) return;
    const dnnl::memory::desc scratch(*md);
    if (scratch.get_size() > 0) args.insert_or_assign(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratch, onednn().engine));
}

dnnl::memory reordered_weights(const dnnl::memory::desc& user, const void* data, const dnnl::memory::desc& wanted) {
    dnnl::memory from(user, onednn().engine, const_cast<void*>(data)), to(wanted, onednn().engine);
    dnnl::reorder(from, to).execute(onednn_stream(), from, to);
    onednn_stream().wait();
    return to;
}

dnnl::memory owned_copy(const dnnl::memory::desc& md, const float* data) {
    dnnl::memory m(md, onednn().engine);
    std::copy(data, data + md.get_size() / sizeof(float), static_cast<float*>(m.get_data_handle()));
    return m;
}

unary_primitive::unary_primitive(dnnl::primitive p, const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md)
    : primitive(std::move(p)),
      src(src_md, onednn().engine, DNNL_MEMORY_NONE),
      dst(dst_md, onednn().engine, DNNL_MEMORY_NONE),
      args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}} {
    add_scratchpad(primitive, args);
    dst_layout = layout_of(dst_md);
}

unary_primitive::unary_primitive(const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md)
    : unary_primitive(dnnl::reorder(dnnl::reorder::primitive_desc(onednn().engine, src_md, onednn().engine, dst_md, own_scratchpad())),
                      src_md, dst_md) {}

void unary_primitive::run(const float* from, float* to) const {
    src.set_data_handle(const_cast<float*>(from));
    dst.set_data_handle(to);
    primitive.execute(onednn_stream(), args);
    onednn_stream().wait();
}

}  // namespace shrink::cpu
