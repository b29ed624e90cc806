// The shape rules of the op table (ops.def's last column) and the table itself.
#include "model/model.hpp"
#include "model/ops.hpp"

#include <array>
#include <cmath>
#include <stdexcept>

namespace shrink {

std::string dims_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s.append(i ? ", " : "").append(std::to_string(shape[i]));
    return s + "]";
}

namespace {

using shapes = std::vector<std::vector<int64_t>>;

int64_t window_extent(const std::string& where, int64_t size, int64_t kernel, int64_t stride, int64_t pad_a, int64_t pad_b,
                      int64_t dilation) {
    if (kernel < 1 || stride < 1 || dilation < 1 || pad_a < 0 || pad_b < 0 || kernel > max_extent || stride > max_extent ||
        dilation > max_extent || pad_a > max_extent || pad_b > max_extent)
        throw std::runtime_error(where + "kernel, strides and dilations must be positive and pads non-negative");
    const int64_t span = dilation * (kernel - 1) + 1;
    const int64_t out = (size + pad_a + pad_b - span) / stride + 1;
    if (size + pad_a + pad_b < span || out < 1) throw std::runtime_error(where + "the window is larger than its padded input");
    return out;
}

void need_rank(const layer& l, const std::vector<int64_t>& in, size_t rank, const char* what, const std::string& where) {
    if (in.size() != rank) throw std::runtime_error(where + l.op + " needs " + what + " input, got " + dims_text(in) + " ('" + l.input + "')");
}

void check_bias(const model& m, const layer& l, int64_t count, const std::string& where) {
    if (l.bias.empty()) return;
    const tensor& b = m.at(l.bias);
    if (b.shape.size() != 1 || b.shape[0] != count) throw std::runtime_error(where + "bias '" + l.bias + "' must be [" + std::to_string(count) + "]");
    if (b.quant) throw std::runtime_error(where + "bias '" + l.bias + "' cannot be quantized");
}

std::vector<int64_t> shape_same(const model&, const layer&, const shapes& ins, const std::string&) { return ins[0]; }

std::vector<int64_t> shape_clip(const model&, const layer& l, const shapes& ins, const std::string& where) {
    if (!(l.alpha <= l.beta)) throw std::runtime_error(where + "clip needs min <= max");
    return ins[0];
}

std::vector<int64_t> shape_features(const model&, const layer& l, const shapes& ins, const std::string& where) {
    need_rank(l, ins[0], 1, "a [features]", where);
    return ins[0];
}

std::vector<int64_t> shape_broadcast(const model&, const layer& l, const shapes& ins, const std::string& where) {
    // The second operand broadcasts to the first (right-aligned, each size equal or 1).
    const std::vector<int64_t>& in = ins[0];
    const std::vector<int64_t>& b = ins[1];
    bool fits = b.size() <= in.size();
    for (size_t i = 0; fits && i < b.size(); ++i) {
        const int64_t have = b[b.size() - 1 - i], want = in[in.size() - 1 - i];
        fits = have == want || have == 1;
    }
    if (!fits)
        throw std::runtime_error(where + l.op + ": '" + l.more_inputs[0] + "' " + dims_text(b) + " does not broadcast to '" + l.input +
                                 "' " + dims_text(in));
    return in;
}

std::vector<int64_t> shape_concat(const model&, const layer& l, const shapes& ins, const std::string& where) {
    const std::vector<int64_t>& in = ins[0];
    if (l.axis < 0 || l.axis >= int64_t(in.size()))
        throw std::runtime_error(where + "concat axis " + std::to_string(l.axis) + " is outside " + dims_text(in));
    std::vector<int64_t> out = in;
    for (size_t k = 1; k < ins.size(); ++k) {
        bool fits = ins[k].size() == in.size();
        for (size_t i = 0; fits && i < in.size(); ++i) fits = int64_t(i) == l.axis || ins[k][i] == in[i];
        if (!fits)
            throw std::runtime_error(where + "concat: '" + l.inputs()[k] + "' " + dims_text(ins[k]) + " does not match '" + l.input + "' " +
                                     dims_text(in) + " outside axis " + std::to_string(l.axis));
        out[size_t(l.axis)] += ins[k][size_t(l.axis)];
    }
    return out;
}

std::vector<int64_t> shape_flatten(const model&, const layer&, const shapes& ins, const std::string&) {
    int64_t n = 1;
    for (int64_t d : ins[0]) n *= d;
    return {n};
}

std::vector<int64_t> shape_reshape(const model&, const layer& l, const shapes& ins, const std::string& where) {
    int64_t n = 1, want = 1;
    for (int64_t d : ins[0]) n *= d;
    for (int64_t d : l.shape) {
        if (d <= 0 || d > max_extent) throw std::runtime_error(where + "reshape to a malformed shape " + dims_text(l.shape));
        want *= d;
    }
    if (l.shape.empty() || l.shape.size() > 3 || want != n)
        throw std::runtime_error(where + "cannot reshape " + dims_text(ins[0]) + " to " + dims_text(l.shape));
    return l.shape;
}

std::vector<int64_t> shape_matrix(const model& m, const layer& l, const shapes& ins, const std::string& where) {
    const std::vector<int64_t>& in = ins[0];
    need_rank(l, in, 1, "a [features]", where);
    const tensor& wt = m.at(l.weight);
    if (wt.shape.size() != 2 || wt.shape[0] <= 0 || wt.shape[1] <= 0)
        throw std::runtime_error(where + "weight '" + l.weight + "' must be 2-D [out, in]");
    if (wt.shape[1] != in[0])
        throw std::runtime_error(where + "weight takes " + std::to_string(wt.shape[1]) + " inputs but '" + l.input + "' has " +
                                 std::to_string(in[0]));
    check_bias(m, l, wt.shape[0], where);
    return {wt.shape[0]};
}

std::vector<int64_t> shape_batchnorm(const model& m, const layer& l, const shapes& ins, const std::string& where) {
    const std::vector<int64_t>& in = ins[0];
    if (in.empty()) throw std::runtime_error(where + "batchnorm needs an input with channels");
    const tensor& scale = m.at(l.weight);
    if (scale.shape.size() != 1 || scale.shape[0] != in[0] || scale.quant || l.bias.empty())
        throw std::runtime_error(where + "batchnorm needs a float scale '" + l.weight + "' and a shift of [" + std::to_string(in[0]) + "]");
    check_bias(m, l, in[0], where);
    return in;
}

std::vector<int64_t> shape_global_pool(const model&, const layer& l, const shapes& ins, const std::string& where) {
    need_rank(l, ins[0], 3, "a [C, H, W]", where);
    return {ins[0][0], 1, 1};
}

/// conv, max_pool, avg_pool: a window over [C, H, W].
std::vector<int64_t> shape_window(const model& m, const layer& l, const shapes& ins, const std::string& where) {
    const std::vector<int64_t>& in = ins[0];
    need_rank(l, in, 3, "a [C, H, W]", where);
    const window& w = l.win;
    int64_t channels = in[0];
    const std::array<int64_t, 2> kernel = w.kernel;
    if (find_op(l.op)->has(OP_WEIGHT)) {
        const tensor& wt = m.at(l.weight);
        if (wt.shape.size() != 4) throw std::runtime_error(where + "weight '" + l.weight + "' must be 4-D [out, in/group, kh, kw]");
        for (int64_t d : wt.shape)
            if (d <= 0 || d > max_extent) throw std::runtime_error(where + "weight '" + l.weight + "' has a bad shape " + dims_text(wt.shape));
        if (w.group < 1 || in[0] % w.group || wt.shape[0] % w.group || wt.shape[1] * w.group != in[0])
            throw std::runtime_error(where + "weight " + dims_text(wt.shape) + " with " + std::to_string(w.group) +
                                     " group(s) does not take the " + std::to_string(in[0]) + " channels of '" + l.input + "'");
        if (kernel[0] != wt.shape[2] || kernel[1] != wt.shape[3])
            throw std::runtime_error(where + "the kernel size differs from the weight's " + dims_text(wt.shape));
        channels = wt.shape[0];
        check_bias(m, l, channels, where);
    } else if (w.dilations[0] != 1 || w.dilations[1] != 1 || w.group != 1) {
        throw std::runtime_error(where + "pooling takes no dilations or groups");
    } else if (w.pads[0] >= kernel[0] || w.pads[2] >= kernel[0] || w.pads[1] >= kernel[1] || w.pads[3] >= kernel[1]) {
        // Past that, a window could hold padding only.
        throw std::runtime_error(where + "pooling pads must be smaller than the kernel");
    }
    return {channels, window_extent(where, in[1], kernel[0], w.strides[0], w.pads[0], w.pads[2], w.dilations[0]),
            window_extent(where, in[2], kernel[1], w.strides[1], w.pads[1], w.pads[3], w.dilations[1])};
}

/// The tokens input of a language model: [id, position] per token.
void need_tokens(const layer& l, const std::vector<int64_t>& in, const std::string& name, const std::string& where) {
    if (in != std::vector<int64_t>{2})
        throw std::runtime_error(where + l.op + " reads the model's tokens ([2] per token: id, position) from '" + name + "', which is " +
                                 dims_text(in));
}

std::vector<int64_t> shape_embedding(const model& m, const layer& l, const shapes& ins, const std::string& where) {
    need_tokens(l, ins[0], l.input, where);
    const tensor& wt = m.at(l.weight);
    if (wt.shape.size() != 2 || wt.shape[0] <= 0 || wt.shape[1] <= 0 || wt.shape[1] > max_extent || wt.shape[0] > (int64_t(1) << 24))
        throw std::runtime_error(where + "weight '" + l.weight + "' must be [vocab, width] (vocab up to 2^24)");
    return {wt.shape[1]};
}

std::vector<int64_t> shape_rms_norm(const model& m, const layer& l, const shapes& ins, const std::string& where) {
    need_rank(l, ins[0], 1, "a [features]", where);
    const tensor& wt = m.at(l.weight);
    if (wt.shape != ins[0] || wt.quant) throw std::runtime_error(where + "rms_norm needs a float weight '" + l.weight + "' of " + dims_text(ins[0]));
    if (!(l.alpha > 0) || !std::isfinite(l.alpha)) throw std::runtime_error(where + "rms_norm needs a positive epsilon (alpha)");
    return ins[0];
}

std::vector<int64_t> shape_attention(const model&, const layer& l, const shapes& ins, const std::string& where) {
    const attention_spec& a = l.attn;
    if (a.heads < 1 || a.kv_heads < 1 || a.heads % a.kv_heads != 0 || a.head_dim < 2 || a.head_dim % 2 != 0 || a.heads > 65536 ||
        a.head_dim > 4096 || !(a.rope_theta > 0) || !std::isfinite(a.rope_theta))
        throw std::runtime_error(where + "attention needs heads and kv_heads >= 1 with kv_heads dividing heads, an even head_dim and a positive "
                                         "rope_theta");
    const std::vector<int64_t> q{a.heads * a.head_dim}, kv{a.kv_heads * a.head_dim};
    const char* names[] = {"queries", "keys", "values"};
    for (size_t i = 0; i < 3; ++i)
        if (ins[i] != (i == 0 ? q : kv))
            throw std::runtime_error(where + "attention's " + names[i] + " '" + l.inputs()[i] + "' are " + dims_text(ins[i]) + ", not " +
                                     dims_text(i == 0 ? q : kv));
    need_tokens(l, ins[3], l.more_inputs[2], where);
    return q;
}

}  // namespace

const std::vector<op_info>& op_table() {
    static const std::vector<op_info> table{
#define SHRINK_OP(id, name, inputs, attributes, shape, onnx) {op_kind::id, name, inputs, attributes, &shape_##shape, onnx},
#include "model/ops.def"
#undef SHRINK_OP
    };
    return table;
}

const op_info* find_op(std::string_view name) {
    for (const op_info& op : op_table())
        if (name == op.name) return &op;
    return nullptr;
}

const op_info& op_of(op_kind kind) { return op_table()[size_t(kind)]; }

op_kind op_kind_of(std::string_view name) {
    if (const op_info* op = find_op(name)) return op->kind;
    std::string known;
    for (const op_info& op : op_table()) known.append(known.empty() ? "" : ", ").append(op.name);
    throw std::runtime_error("unknown op '" + std::string(name) + "' (known: " + known + ")");
}

}  // namespace shrink
