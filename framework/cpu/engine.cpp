#include "cpu/engine.hpp"

#include "cpu/batchnorm.hpp"
#include "cpu/conv.hpp"
#include "cpu/gemv.hpp"
#include "cpu/join.hpp"
#include "cpu/matmul.hpp"
#include "cpu/sequence.hpp"
#include "cpu/softmax.hpp"
#include "cpu/threading.hpp"
#include "backend/fusion.hpp"
#include "model/decoder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>

namespace shrink {

namespace {
// Up to this many rows a linear layer is a few matrix-vector products (cpu/gemv.hpp);
// from there oneDNN's blocked matmul wins (measured with bench/bench_runtime).
constexpr int64_t gemv_max_rows = 4;
// A batch splits into one part per thread from this many rows per part.
constexpr int64_t split_min_rows = 16;
// A linear weight of at least this many bytes is read where it lies instead of being
// reordered into oneDNN's blocked layout: each copy (one per batch size and thread) would
// cost the weight's size in memory, and a product with a weight far larger than the
// caches is bound by reading it either way. Smaller weights (every reference model's) are
// reordered as before.
constexpr uint64_t in_place_weight_bytes = uint64_t(16) << 20;

/// A weight's floats: the payload itself when it is dense f32 (shared, never copied),
/// else decoded (widened, dequantized, zeros where pruned).
shared_array<float> floats_of(const tensor& t) {
    const uint64_t n = t.element_count();
    if (n * sizeof(float) >= in_place_weight_bytes && !t.quant && !t.sparse() && t.type == dtype::f32) return t.values;
    // A cache line's alignment for what the kernels read row after row.
    std::shared_ptr<float> aligned(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(64))),
                                   [](float* p) { ::operator delete[](p, std::align_val_t(64)); });
    t.decode_range(0, n, aligned.get());
    return shared_array<float>::view(aligned, aligned.get(), n);
}

int64_t volume(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

cpu::window_shape window_of(const std::vector<int64_t>& in, const std::vector<int64_t>& out, const window& w, int64_t rows) {
    cpu::window_shape s;
    s.batch = rows;
    s.in_c = in[0], s.in_h = in[1], s.in_w = in[2];
    s.out_c = out[0], s.out_h = out[1], s.out_w = out[2];
    s.kernel = w.kernel;
    s.strides = w.strides;
    s.pads = w.pads;
    s.dilations = w.dilations;
    s.group = w.group;
    return s;
}

}  // namespace

struct engine::batch_plan {
    // One per step: reads its inputs (one pointer each), writes its output.
    std::vector<std::function<void(const float* const*, float*)>> run;
    // Where a step reads plain data from a value in a blocked layout: per step and input,
    // the conversion, into that input's scratch buffer, which is read at once. Index
    // steps_.size() converts the model's output (into scratch[0]).
    std::vector<std::vector<std::shared_ptr<cpu::kernel>>> to_plain;
    std::vector<std::string> layouts;  // per step, for layout_summary()
    std::vector<std::vector<float>> buffers;
    std::vector<std::vector<float>> scratch;  // per input position
};

namespace {

/// A linear layer the integer matmul runs exactly as the float simulation rounds it: static
/// 8-bit input quantization (per-token dynamic runs as the simulation), symmetric int8 weights with one scale per output row (or one
/// for all), no pruning mask.
bool integer_linear(const layer& l, const tensor& w) {
    return l.kind() == op_kind::linear && l.input_quantization && !l.input_quantization->per_token && w.quant && w.quant->table.empty() && w.quant->bits == 8 &&
           w.quant->symmetric && !w.sparse() &&
           (w.quant->group_size == 0 || w.quant->group_size >= w.cols());
}

/// Where a tensor's payload lies: the same pointer means the same values (payloads are
/// copy-on-write, so a write gives a new one).
const void* payload_of(const tensor& t) {
    return t.quant ? static_cast<const void*>(t.q.data()) : t.type == dtype::f32 ? static_cast<const void*>(t.values.data()) : t.half.data();
}

}  // namespace

void engine::load_matrix(step& s, const model& m) const {
    const layer& l = *s.source;
    const tensor& w = m.at(l.weight);
    s.codes = {};
    s.row_scales.clear();
    s.weight = {};
    if (integer_kernels_ && integer_linear(l, w) && cpu::int8_matmul_exact()) {
        s.codes = w.q;
        for (uint64_t r = 0; r < w.rows(); ++r) s.row_scales.push_back(w.scales[w.quant->group_size ? r : 0]);
    } else {
        s.weight = floats_of(w);
    }
    s.bias = l.bias.empty() ? std::vector<float>(size_t(w.shape[0]), 0.0f) : m.at(l.bias).decode();
    s.payload = payload_of(w);
}

engine::engine(const model& m, bool integer_kernels) : integer_kernels_(integer_kernels) {
    m.validate();
    const auto shapes = m.activation_shapes();
    const fusion_rule fuse(m);
    std::map<std::string, int> value{{m.input, 0}};
    std::vector<int64_t> value_floats{m.input_features};
    auto new_value = [&](const std::string& name) {
        value[name] = int(value_floats.size());
        value_floats.push_back(volume(shapes.at(name)));
        return value[name];
    };

    for (size_t i = 0; i < m.layers.size(); ++i) {
        const layer& l = m.layers[i];
        const op_kind op = l.kind();
        if (op_of(op).has(OP_SAME_FLOATS)) {  // flatten, reshape: the same floats in the same order, a view
            value[l.output] = value.at(l.input);
            continue;
        }
        step s;
        s.source = &l;
        for (const std::string& in : l.inputs()) {
            s.inputs.push_back(value.at(in));
            s.in_sizes.push_back(volume(shapes.at(in)));
        }
        s.in_shape = shapes.at(l.input);
        std::string produced = l.output;
        auto next_is = [&](op_kind k) { return fuse.absorbable(i + 1, produced) && m.layers[i + 1].kind() == k; };
        switch (op) {
            case op_kind::linear:
            case op_kind::conv: {
                s.k = op == op_kind::linear ? kind::linear : kind::conv;
                load_matrix(s, m);
                const int64_t out_channels = m.at(l.weight).shape[0];
                if (s.k == kind::conv && next_is(op_kind::batchnorm)) {
                    // conv then batchnorm is one conv: scale each output channel's weights and bias.
                    const layer& bn = m.layers[++i];
                    const std::vector<float> scale = m.at(bn.weight).decode(), shift = m.at(bn.bias).decode();
                    const size_t per_channel = s.weight.size() / size_t(out_channels);
                    float* weight = s.weight.write();  // the model's own payload stays as it is
                    for (size_t o = 0; o < size_t(out_channels); ++o) {
                        for (size_t k = 0; k < per_channel; ++k) weight[o * per_channel + k] *= scale[o];
                        s.bias[o] = s.bias[o] * scale[o] + shift[o];
                    }
                    s.folded.push_back(bn.name);
                    s.scaled = true;
                    produced = bn.output;
                }
                if (fuse.absorbable(i + 1, produced) && cpu::is_activation(m.layers[i + 1].kind()) &&
                    (s.k == kind::conv || m.layers[i + 1].kind() == op_kind::relu)) {
                    const layer& f = m.layers[++i];
                    s.post = cpu::activation{f.kind(), f.alpha, f.beta};
                    s.folded.push_back(f.name);
                    produced = f.output;
                }
                break;
            }
            case op_kind::relu:
            case op_kind::leaky_relu:
            case op_kind::sigmoid:
            case op_kind::tanh:
            case op_kind::gelu:
            case op_kind::gelu_tanh:
            case op_kind::clip:
            case op_kind::silu:
                s.k = kind::activation;
                s.post = cpu::activation{op, l.alpha, l.beta};
                break;
            case op_kind::softmax: s.k = kind::softmax; break;
            case op_kind::log_softmax: s.k = kind::log_softmax; break;
            case op_kind::batchnorm:
                s.k = kind::batchnorm;
                s.weight = floats_of(m.at(l.weight));
                s.bias = m.at(l.bias).decode();
                break;
            case op_kind::add:
            case op_kind::sub:
            case op_kind::mul:
            case op_kind::div:
                s.k = kind::binary;
                s.operand_shape = shapes.at(l.more_inputs[0]);
                break;
            case op_kind::concat:
                s.k = kind::concat;
                for (const std::string& in : l.inputs()) s.in_shapes.push_back(shapes.at(in));
                break;
            case op_kind::max_pool:
            case op_kind::avg_pool:
            case op_kind::global_avg_pool: s.k = kind::pool; break;
            case op_kind::flatten:
            case op_kind::reshape: break;  // views, above
            case op_kind::embedding:
                s.k = kind::embedding;
                s.weight = floats_of(m.at(l.weight));
                sequential_ = true;
                break;
            case op_kind::rms_norm:
                s.k = kind::rms_norm;
                s.weight = floats_of(m.at(l.weight));
                break;
            case op_kind::attention:
                s.k = kind::attention;
                s.attention_index = attention_layers_++;
                sequential_ = true;
                break;
        }
        if (!l.weight.empty()) s.payload = payload_of(m.at(l.weight));
        s.output = new_value(produced);
        s.out_shape = shapes.at(produced);
        s.out_size = volume(s.out_shape);
        steps_.push_back(std::move(s));
    }
    output_value_ = value.at(m.output);
    output_width_ = value_floats[size_t(output_value_)];
    input_width_ = m.input_features;
    // A chunk's widest step (its input and output) takes at most half a core's L2 cache:
    // on the reference CNN, chunks of 16 to 32 rows run batch 256 about 7% faster than
    // one chunk per thread, whose conv output pooling reads back from memory; the MLP's
    // activations fit whole (bench/bench_runtime).
    int64_t widest = 1;
    for (const step& s : steps_) widest = std::max(widest, s.in_size() + s.out_size);
    chunk_rows_ = std::max(split_min_rows, cpu::l2_cache_bytes() / 2 / (widest * int64_t(sizeof(float))));
    for (size_t v = 1; v < value_floats.size(); ++v) unplanned_floats_ += value_floats[v];

    // The memory plan: a value's buffer is free again after the last step that reads it.
    std::vector<size_t> last_read(value_floats.size(), 0);
    for (size_t k = 0; k < steps_.size(); ++k)
        for (int v : steps_[k].inputs) last_read[size_t(v)] = k;
    last_read[size_t(output_value_)] = std::numeric_limits<size_t>::max();
    buffer_of_.assign(value_floats.size(), -1);
    std::vector<int> free_buffers;
    for (size_t k = 0; k < steps_.size(); ++k) {
        const step& s = steps_[k];
        // Elementwise steps write over their (first) input when it dies with them; a binary
        // step only when its operands are different values.
        const bool elementwise = s.k == kind::activation || s.k == kind::batchnorm || s.k == kind::softmax || s.k == kind::log_softmax ||
                                 (s.k == kind::binary && s.inputs[1] != s.input());
        const bool in_place = elementwise && s.input() != 0 && last_read[size_t(s.input())] == k;
        int buffer = -1;
        if (in_place) {
            buffer = buffer_of_[size_t(s.input())];
        } else if (!free_buffers.empty()) {
            // The smallest free buffer that holds the value, else the largest (grown).
            auto best = free_buffers.end();
            for (auto it = free_buffers.begin(); it != free_buffers.end(); ++it) {
                const int64_t have = buffer_floats_[size_t(*it)], best_have = best == free_buffers.end() ? -1 : buffer_floats_[size_t(*best)];
                const bool fits = have >= s.out_size, best_fits = best_have >= s.out_size;
                if (best == free_buffers.end() || (fits && (!best_fits || have < best_have)) || (!fits && !best_fits && have > best_have)) best = it;
            }
            buffer = *best;
            free_buffers.erase(best);
            buffer_floats_[size_t(buffer)] = std::max(buffer_floats_[size_t(buffer)], s.out_size);
        } else {
            buffer = int(buffer_floats_.size());
            buffer_floats_.push_back(s.out_size);
        }
        buffer_of_[size_t(s.output)] = buffer;
        for (size_t i = 0; i < s.inputs.size(); ++i) {
            const int v = s.inputs[i];
            const bool repeated = std::find(s.inputs.begin(), s.inputs.begin() + long(i), v) != s.inputs.begin() + long(i);
            if (v != 0 && last_read[size_t(v)] == k && !repeated && !(in_place && v == s.input())) free_buffers.push_back(buffer_of_[size_t(v)]);
        }
    }
    find_blocks(last_read, value_floats);
}

void engine::find_blocks(const std::vector<size_t>& last_read, const std::vector<int64_t>& value_floats) {
    for (const step& s : steps_)
        if (s.k == kind::conv || s.k == kind::pool) return;  // values that may lie in blocked layouts
    // Values alive across the boundary before step k: written before it, read at or after it.
    std::vector<size_t> written(value_floats.size(), 0);
    for (size_t k = 0; k < steps_.size(); ++k) written[size_t(steps_[k].output)] = k;
    auto alone = [&](size_t k) {  // the one value alive before step k, or -1
        int found = -1;
        for (size_t v = 1; v < value_floats.size(); ++v)
            if (written[v] < k && last_read[v] >= k && last_read[v] != 0) {
                if (found >= 0) return -1;
                found = int(v);
            }
        return found;
    };
    size_t first = 0;
    int carried = 0;
    for (size_t k = 1; k <= steps_.size(); ++k) {
        const int v = k < steps_.size() ? alone(k) : output_value_;
        if (v < 0) continue;
        // Steps of one "layers.N" block stay together.
        const std::string key = block_of(steps_[first].source->name);
        if (k < steps_.size() && !key.empty() && block_of(steps_[k].source->name) == key) continue;
        block b;
        b.name = key.empty() ? steps_[first].source->name : key;
        b.first = first;
        b.last = k;
        b.in_width = carried ? value_floats[size_t(carried)] : 0;
        b.out_width = value_floats[size_t(v)];
        for (size_t i = first; i < k; ++i)
            if (steps_[i].k == kind::linear) b.layers.push_back(steps_[i].source->name);
        blocks_.push_back(std::move(b));
        block_in_.push_back(carried);
        block_out_.push_back(v);
        first = k;
        carried = v;
    }
}

bool engine::reload_weights(const model& m) {
    bool changed = false;
    for (step& s : steps_) {
        const layer& l = *s.source;
        if (l.weight.empty() || payload_of(m.at(l.weight)) == s.payload) continue;
        if (s.scaled)
            throw std::logic_error("engine: the weight of '" + l.name + "' changed, and the engine folded a batchnorm into it");
        if (s.k == kind::linear || s.k == kind::conv) {
            load_matrix(s, m);
        } else {  // an embedding (a tied head's table too), a norm's scale, a batchnorm
            s.weight = floats_of(m.at(l.weight));
            if (s.k == kind::batchnorm) s.bias = m.at(l.bias).decode();
            s.payload = payload_of(m.at(l.weight));
        }
        changed = true;
    }
    if (changed) plans_.clear();  // their kernels point at the old weights
    return changed;
}

void engine::run_block(size_t b, const float* input, const float* carried, int64_t rows, const layer_input_fn& on_layer_input,
                       float* out) const {
    const block& bl = blocks_.at(b);
    batch_plan& plan = plan_for(rows, true, 0);
    if (block_in_[b]) std::copy(carried, carried + rows * bl.in_width, value_data(plan, input, block_in_[b]));
    run_steps(plan, input, rows, bl.first, bl.last, on_layer_input);
    const float* result = value_data(plan, input, block_out_[b]);
    std::copy(result, result + rows * bl.out_width, out);
}

engine::~engine() = default;

int64_t engine::planned_floats() const {
    int64_t n = 0;
    for (int64_t f : buffer_floats_) n += f;
    return n;
}

std::vector<std::string> engine::step_summary() const {
    std::vector<std::string> out;
    for (const step& s : steps_) {
        std::string line = s.source->op;
        if (s.integer()) line.append(" int8");
        for (const std::string& f : s.folded) line.append("+").append(f);
        out.push_back(s.source->name + ": " + line);
    }
    return out;
}

std::vector<std::string> engine::layout_summary(int64_t rows) const { return plan_for(rows, false, 0).layouts; }

engine::batch_plan& engine::plan_for(int64_t rows, bool plain, int part) const {
    auto& p = plans_[{rows, plain, part}];
    if (p) return *p;
    p = std::make_unique<batch_plan>();
    // Each value's layout: a conv writes the blocked layout its kernel runs fastest on
    // (unless `plain`), pooling, activations and batchnorms keep their input's, every
    // other step reads and writes plain data.
    std::vector<cpu::layout> layout_of(buffer_of_.size());
    std::vector<int64_t> buffer_size(buffer_floats_.size());
    for (size_t b = 0; b < buffer_size.size(); ++b) buffer_size[b] = rows * buffer_floats_[b];
    std::vector<int64_t> scratch;
    auto convert = [&](int value, int64_t floats, size_t slot) -> std::shared_ptr<cpu::kernel> {
        if (layout_of[size_t(value)].plain()) return nullptr;
        if (scratch.size() <= slot) scratch.resize(slot + 1);
        scratch[slot] = std::max(scratch[slot], rows * floats);
        return std::make_shared<cpu::kernel>(cpu::make_to_plain_kernel(layout_of[size_t(value)]));
    };
    for (const step& s : steps_) {
        const layer& l = *s.source;
        // A linear layer reads a flattened blocked value as it lies, its weight columns
        // shuffled to match, where every sample's floats are shuffled the same way.
        std::vector<int64_t> order;
        if (s.k == kind::linear && !l.input_quantization) order = cpu::sample_order(layout_of[size_t(s.input())], rows, s.in_size());
        const cpu::layout& first = layout_of[size_t(s.input())];
        const bool fits = first.fits(rows, s.in_shape);
        bool layout_free = !order.empty() || s.k == kind::activation ||
                           (fits && (s.k == kind::pool || s.k == kind::batchnorm || (s.k == kind::conv && !l.input_quantization)));
        // A binary step takes both operands as they lie (oneDNN's binary primitive reads
        // each in its own layout, the second broadcast) when their dims are what they hold.
        const cpu::layout operand = s.k == kind::binary ? layout_of[size_t(s.inputs[1])] : cpu::layout();
        if (s.k == kind::binary) layout_free = fits && operand.fits(rows, s.operand_shape);
        p->to_plain.emplace_back();
        for (size_t i = 0; i < s.inputs.size(); ++i)
            p->to_plain.back().push_back(layout_free ? nullptr : convert(s.inputs[i], s.in_sizes[i], i));
        const cpu::layout& in = layout_free ? first : cpu::layout();
        cpu::layout& out = layout_of[size_t(s.output)];
        std::optional<cpu::kernel> unary;  // what most steps run: one input, one output
        switch (s.k) {
            case kind::linear: {
                const bool relu = bool(s.post);
                const int64_t n = s.out_size, k = s.in_size();
                if (s.integer()) {
                    const input_quant& iq = *l.input_quantization;
                    unary = cpu::make_int8_linear_kernel(rows, n, k, s.codes.data(), s.row_scales.data(), {iq.scale, iq.zero_point},
                                                         s.bias.data(), relu);
                    break;
                }
                auto weight = std::make_shared<std::vector<float>>();
                if (!order.empty()) {
                    weight->resize(s.weight.size());
                    for (int64_t o = 0; o < n; ++o)
                        for (int64_t j = 0; j < k; ++j) (*weight)[size_t(o * k + j)] = s.weight[size_t(o * k + order[size_t(j)])];
                }
                const float* w = order.empty() ? s.weight.data() : weight->data();
                if (rows <= gemv_max_rows) {
                    p->run.push_back([&s, weight, w, rows, relu, n, k](const float* const* src, float* dst) {
                        cpu::gemv_rows(src[0], rows, w, s.bias.data(), dst, n, k, relu);
                    });
                } else {
                    const bool in_place = order.empty() && uint64_t(n * k) * sizeof(float) >= in_place_weight_bytes;
                    unary = cpu::make_linear_kernel(rows, n, k, w, s.bias.data(), relu, in_place);
                }
                break;
            }
            case kind::conv:
                unary = cpu::make_conv_kernel(window_of(s.in_shape, s.out_shape, l.win, rows), s.weight.data(), s.bias.data(), s.post, in,
                                              plain);
                break;
            case kind::pool: {
                window w = l.win;
                cpu::pooling how = l.kind() == op_kind::max_pool ? cpu::pooling::max
                                   : w.count_include_pad           ? cpu::pooling::average_with_pad
                                                                   : cpu::pooling::average;
                if (l.kind() == op_kind::global_avg_pool) {
                    w = window{};
                    w.kernel = {s.in_shape[1], s.in_shape[2]};
                    how = cpu::pooling::average;
                }
                unary = cpu::make_pool_kernel(window_of(s.in_shape, s.out_shape, w, rows), how, in);
                break;
            }
            case kind::activation:
                unary = cpu::make_eltwise_kernel(rows * s.in_size(), s.post, in);
                break;
            case kind::batchnorm: {
                const int64_t channels = s.in_shape[0];
                unary = cpu::make_batchnorm_kernel(rows, channels, s.in_size() / channels, s.weight.data(), s.bias.data(), in);
                break;
            }
            case kind::softmax:
            case kind::log_softmax:
                unary = cpu::make_softmax_kernel(rows, s.in_size(), s.k == kind::log_softmax);
                break;
            case kind::binary: {
                auto k = std::make_shared<cpu::binary_kernel>(l.kind(), rows, s.in_shape, s.operand_shape, in,
                                                              layout_free ? operand : cpu::layout());
                out = in;
                p->run.push_back([k](const float* const* src, float* dst) { k->run(src[0], src[1], dst); });
                break;
            }
            case kind::concat: {
                auto k = std::make_shared<cpu::concat_kernel>(rows, s.in_shapes, l.axis);
                p->run.push_back([k](const float* const* src, float* dst) { k->run(src, dst); });
                break;
            }
            case kind::embedding: {
                const int64_t vocab = int64_t(s.weight.size()) / s.out_size, width = s.out_size;
                p->run.push_back([&s, rows, vocab, width](const float* const* src, float* dst) {
                    cpu::embedding_rows(src[0], rows, s.weight.data(), vocab, width, dst);
                });
                break;
            }
            case kind::rms_norm:
                p->run.push_back([&s, rows](const float* const* src, float* dst) {
                    cpu::rms_norm_rows(src[0], rows, s.out_size, s.weight.data(), s.source->alpha, dst);
                });
                break;
            case kind::attention:
                p->run.push_back([this, &s, rows](const float* const* src, float* dst) {
                    if (cache_)
                        cpu::cached_attention(src[0], src[1], src[2], src[3], rows, s.source->attn, cache_->layers[size_t(s.attention_index)], dst);
                    else
                        cpu::causal_attention(src[0], src[1], src[2], src[3], rows, s.source->attn, dst);
                });
                break;
        }
        if (unary) {
            auto k = std::make_shared<cpu::kernel>(std::move(*unary));
            out = k->dst_layout();
            p->run.push_back([k](const float* const* src, float* dst) { k->run(src[0], dst); });
        }
        auto name = [](const cpu::layout& x) { return x.plain() ? "plain" : "blocked"; };
        std::string line = l.name + ": ";
        for (size_t i = 0; i < s.inputs.size(); ++i) {
            line.append(i ? " + " : "").append(name(layout_of[size_t(s.inputs[i])]));
            if (p->to_plain.back()[i]) line.append(" converted to plain");
        }
        if (!order.empty()) line.append(" read by shuffled weights");
        p->layouts.push_back(line.append(" -> ").append(name(out)));
        const int buffer = buffer_of_[size_t(s.output)];
        buffer_size[size_t(buffer)] = std::max(buffer_size[size_t(buffer)], out.floats());
    }
    p->to_plain.push_back({convert(output_value_, output_width_, 0)});
    if (p->to_plain.back()[0]) p->layouts.push_back("output: blocked converted to plain");
    p->buffers.resize(buffer_size.size());
    for (size_t b = 0; b < buffer_size.size(); ++b) p->buffers[b].resize(size_t(buffer_size[b]));
    for (int64_t floats : scratch) p->scratch.emplace_back(size_t(floats));
    return *p;
}

std::vector<float> engine::run(const float* input, int64_t rows, const layer_input_fn& on_layer_input) const {
    std::vector<float> out(size_t(rows * output_width_));
    // A large batch runs as one part per thread, each part's steps on one thread with no
    // hand-over between steps: at batch 256 about 7% faster than every step split across
    // the threads, on the reference MLP and CNN alike (bench/compare_runtime.sh). An
    // observer of layer inputs sees the whole batch at once, so then the batch stays whole.
    const int threads = cpu::thread_count();
    const int64_t parts = on_layer_input || sequential_ || rows < threads * split_min_rows ? 1 : threads;
    if (parts == 1) {
        run_part(plan_for(rows, bool(on_layer_input), 0), input, rows, on_layer_input, out.data());
        return out;
    }
    // Thread t takes rows [rows * t / parts, rows * (t + 1) / parts), in chunks of at
    // most chunk_rows_ rows, each chunk small enough for its activations to stay in cache.
    std::vector<std::vector<std::pair<int64_t, batch_plan*>>> chunks(static_cast<size_t>(parts));
    for (int64_t t = 0; t < parts; ++t) {
        const int64_t first = rows * t / parts, last = rows * (t + 1) / parts;
        const int64_t count = (last - first + chunk_rows_ - 1) / chunk_rows_;
        for (int64_t c = 0; c < count; ++c) {
            const int64_t from = first + (last - first) * c / count, to = first + (last - first) * (c + 1) / count;
            chunks[size_t(t)].emplace_back(from, &plan_for(to - from, false, int(t)));
        }
    }
    std::exception_ptr failed;
#pragma omp parallel for num_threads(int(parts)) schedule(static, 1)
    for (int64_t t = 0; t < parts; ++t) {
        try {
            const int64_t last = rows * (t + 1) / parts;
            const auto& mine = chunks[size_t(t)];
            for (size_t c = 0; c < mine.size(); ++c) {
                const int64_t from = mine[c].first, to = c + 1 < mine.size() ? mine[c + 1].first : last;
                run_part(*mine[c].second, input + from * input_width_, to - from, {}, out.data() + from * output_width_);
            }
        } catch (...) {
#pragma omp critical
            failed = std::current_exception();
        }
    }
    if (failed) std::rethrow_exception(failed);
    return out;
}

std::vector<float> engine::run_cached(const float* input, int64_t rows, cpu::kv_cache& cache) const {
    if (!attention_layers_) throw std::logic_error("run_cached needs a decoder (a model with attention)");
    if (cache.layers.empty()) cache.layers.resize(size_t(attention_layers_));
    if (cache.layers.size() != size_t(attention_layers_)) throw std::logic_error("the cache belongs to another model");
    // The cache stays as it was if a run fails: each layer is cut back to what it held.
    const int64_t held = cache.positions;
    std::vector<size_t> key_sizes, value_sizes;
    for (const auto& l : cache.layers) key_sizes.push_back(l.keys.size()), value_sizes.push_back(l.values.size());
    cache_ = &cache;
    std::vector<float> out(size_t(rows * output_width_));
    try {
        run_part(plan_for(rows, false, 0), input, rows, {}, out.data());
    } catch (...) {
        cache_ = nullptr;
        for (size_t i = 0; i < cache.layers.size(); ++i) {
            cache.layers[i].keys.resize(key_sizes[i]);
            cache.layers[i].values.resize(value_sizes[i]);
        }
        throw;
    }
    cache_ = nullptr;
    cache.positions = held + rows;
    return out;
}

float* engine::value_data(batch_plan& plan, const float* input, int v) const {
    const int b = buffer_of_[size_t(v)];
    return b < 0 ? const_cast<float*>(input) : plan.buffers[size_t(b)].data();
}

void engine::run_part(batch_plan& plan, const float* input, int64_t rows, const layer_input_fn& on_layer_input, float* result) const {
    run_steps(plan, input, rows, 0, steps_.size(), on_layer_input);
    const float* out = value_data(plan, input, output_value_);
    if (const auto& convert = plan.to_plain.back()[0]) {
        convert->run(out, plan.scratch[0].data());
        out = plan.scratch[0].data();
    }
    std::copy(out, out + rows * output_width_, result);
}

void engine::run_steps(batch_plan& plan, const float* input, int64_t rows, size_t first, size_t last,
                       const layer_input_fn& on_layer_input) const {
    auto data_of = [&](int v) { return value_data(plan, input, v); };
    std::vector<float> quantized_input;
    std::vector<const float*> srcs;
    for (size_t k = first; k < last; ++k) {
        const step& s = steps_[k];
        srcs.clear();
        for (size_t i = 0; i < s.inputs.size(); ++i) {
            const float* src = data_of(s.inputs[i]);
            if (const auto& convert = plan.to_plain[k][i]) {
                convert->run(src, plan.scratch[i].data());
                src = plan.scratch[i].data();
            }
            srcs.push_back(src);
        }
        if (s.k == kind::linear || s.k == kind::conv) {
            if (const auto& iq = s.source->input_quantization; iq && (!s.integer() || on_layer_input)) {
                // Static activation quantization, simulated: the values become exactly
                // what an 8-bit asymmetric input would carry. The integer matmul quantizes
                // its input itself; an observer still sees the simulated values.
                quantized_input.assign(srcs[0], srcs[0] + rows * s.in_size());
                if (iq->per_token) {
                    // Dynamic: each row (a token, a sample) with its own scale.
                    for (int64_t r = 0; r < rows; ++r) quantize_row_per_token(quantized_input.data() + r * s.in_size(), uint64_t(s.in_size()));
                } else {
                    for (float& x : quantized_input) {
                        const float q = std::clamp(std::nearbyint(x / iq->scale) + float(iq->zero_point), 0.0f, 255.0f);
                        x = (q - float(iq->zero_point)) * iq->scale;
                    }
                }
                srcs[0] = quantized_input.data();
            }
            if (on_layer_input) on_layer_input(s.source->name, srcs[0], rows, s.in_size());
        }
        plan.run[k](srcs.data(), data_of(s.output));
    }
}

}  // namespace shrink
