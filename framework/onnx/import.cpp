#include "onnx/import.hpp"

#include "model/safetensors.hpp"
#include "onnx/interpreter.hpp"
#include "onnx/interpreter_detail.hpp"
#include "onnx/patterns.hpp"
#include "util/errors.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <map>
#include <set>

namespace shrink::onnx_import {

namespace {

constexpr int64_t probe_batch = 2;  // a stand-in batch size for learning shapes

/// Our op that ONNX's `onnx_op` maps to one to one: the op that exports as it (ops.def).
std::string shrink_op_exported_as(const std::string& onnx_op) {
    for (const op_info& o : op_table())
        if (onnx_op == o.onnx) return o.name;
    throw std::logic_error("no op exports as " + onnx_op);
}

std::vector<float> as_floats(const nd_tensor& t) { return std::vector<float>(t.data.begin(), t.data.end()); }

int64_t volume(const std::vector<int64_t>& d) {
    int64_t n = 1;
    for (int64_t x : d) n *= x;
    return n;
}

struct import_failure {
    std::string message;
};

[[noreturn]] void refuse(const std::string& m) { throw import_failure{m}; }

/// Turns an ONNX graph into a shrink model, node by node along the data path.
class importer {
  public:
    importer(const graph& g, std::map<std::string, nd_tensor> values, model& m)
        : g_(g), values_(std::move(values)), m_(m), known_(data_independent_values(g)) {
        for (const node& n : g.nodes) {
            for (const std::string& i : n.inputs) consumers_[i].push_back(&n);
            for (const std::string& o : n.outputs) producer_[o] = &n;
        }
    }

    void input(const std::string& onnx_name, const std::vector<int64_t>& per_sample) {
        // [C, H, W] inputs stay images; anything else is read as flat features.
        m_.input = "input";
        m_.input_features = volume(per_sample);
        if (per_sample.size() == 3) m_.input_shape = per_sample;
        act_[onnx_name] = m_.input;
        shape_[m_.input] = per_sample.size() == 3 ? per_sample : std::vector<int64_t>{m_.input_features};
    }

    void run() {
        for (const node& n : g_.nodes) {
            const std::string who = "node '" + (n.name.empty() ? n.op : n.name) + "' (" + n.op + ")";
            try {
                visit(n);
            } catch (const import_failure& f) {
                refuse(who + ": " + f.message);
            } catch (const std::out_of_range&) {
                refuse(who + ": refers to a value the graph does not compute");
            }
        }
    }

    std::string activation_of(const std::string& onnx_name) const {
        auto it = act_.find(onnx_name);
        if (it == act_.end() || pending_pads_.count(onnx_name)) return "";
        return it->second;
    }

  private:
    void visit(const node& n) {
        if (n.outputs.empty()) return;
        std::vector<size_t> data_inputs;
        for (size_t i = 0; i < n.inputs.size(); ++i)
            if (act_.count(n.inputs[i])) data_inputs.push_back(i);
        // Off the data path (constants, shape arithmetic): the probe run settled these values.
        if (data_inputs.empty() || n.op == "Shape" || n.op == "Size") return;
        if (absorbed_.count(n.outputs[0])) return;
        if (data_inputs.size() > 1) return join(n, data_inputs);
        const std::string& x = n.inputs[data_inputs[0]];
        if (pending_pads_.count(x) && n.op != "Conv") refuse("a Pad is imported only when a Conv reads it");
        for (size_t i = 0; i < n.inputs.size(); ++i)
            if (i != data_inputs[0] && !n.inputs[i].empty() && !known_.count(n.inputs[i]))
                refuse("input '" + n.inputs[i] + "' is neither an activation nor a constant");
        for (size_t o = 1; o < n.outputs.size(); ++o)
            if (!n.outputs[o].empty() && (consumers_.count(n.outputs[o]) || is_graph_output(n.outputs[o])))
                refuse("its output '" + n.outputs[o] + "' is used, and shrink keeps only the first");
        const std::string& op = n.op;
        if (op == "Identity" || op == "Dropout") return alias(n.outputs[0], x);
        if (op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze") return reshape(n, x);
        if (op == "Transpose") return transpose(n, x);
        if (op == "Gemm" || op == "MatMul") return linear(n, x, data_inputs[0]);
        if (op == "Conv") return conv(n, x);
        if (op == "BatchNormalization") return batchnorm(n, x);
        if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return arithmetic(n, x, data_inputs[0]);
        if (op == "Relu" || op == "Sigmoid" || op == "Tanh") {
            add(n, x, shrink_op_exported_as(op));
            return;
        }
        if (op == "LeakyRelu") {
            add(n, x, "leaky_relu", [&](layer& l) { l.alpha = float(n.float_attr("alpha", 0.01)); });
            return;
        }
        if (op == "Gelu") {  // opset 20, or a formula patterns.hpp rewrote
            const attribute* a = n.attr("approximate");
            const std::string approximate = a && a->s ? *a->s : "none";
            if (approximate != "none" && approximate != "tanh") refuse("approximate '" + approximate + "' is not a Gelu approximation");
            add(n, x, approximate == "none" ? "gelu" : "gelu_tanh");
            return;
        }
        if (op == "QuantizeLinear") return quantize_pair(n, x);
        if (op == "Clip") return clip(n, x);
        if (op == "Softmax" || op == "LogSoftmax") {
            const int64_t axis = n.int_attr("axis", g_.opset >= 13 ? -1 : 1);
            if (rank(x) != 1 || (axis != -1 && axis != 1)) refuse("only a softmax over [batch, features] is supported");
            add(n, x, shrink_op_exported_as(op));
            return;
        }
        if (op == "MaxPool" || op == "AveragePool") return pool(n, x);
        if (op == "GlobalAveragePool") {
            add(n, x, shrink_op_exported_as(op));
            return;
        }
        if (op == "ReduceMean") return reduce_mean(n, x);
        if (op == "Pad") return pad(n, x);
        refuse("the op is not supported by shrink's model graph (docs/onnx.md lists what imports)");
    }

    bool is_graph_output(const std::string& v) const { return std::find(g_.outputs.begin(), g_.outputs.end(), v) != g_.outputs.end(); }
    const nd_tensor& value(const std::string& v) const { return values_.at(v); }
    std::vector<int64_t> per_sample(const std::string& v) const {
        const std::vector<int64_t>& s = value(v).shape;
        if (s.empty() || s[0] != probe_batch) refuse("value '" + v + "' does not keep the batch as its first dimension");
        return std::vector<int64_t>(s.begin() + 1, s.end());
    }
    size_t rank(const std::string& onnx_value) const { return shape_.at(act_.at(onnx_value)).size(); }
    const nd_tensor& constant(const node& n, size_t i, const char* what) const {
        if (i >= n.inputs.size() || n.inputs[i].empty() || !known_.count(n.inputs[i])) refuse(std::string("the ") + what + " must be a constant");
        return value(n.inputs[i]);
    }
    std::string name_for(const std::string& prefix) { return prefix + std::to_string(++counts_[prefix]); }
    void alias(const std::string& out, const std::string& in) { act_[out] = act_.at(in); }

    /// Adds a layer reading ONNX value x, producing n's output (or `result`); `fill` sets
    /// its weights and attributes before its shape is worked out. Returns its shape.
    const std::vector<int64_t>& add(const node& n, const std::string& x, const std::string& op,
                                    const std::function<void(layer&)>& fill = {}, const std::string& result = "") {
        static const std::map<std::string, std::string> prefix{
            {"linear", "fc"}, {"conv", "conv"}, {"batchnorm", "bn"}, {"max_pool", "pool"}, {"avg_pool", "pool"},
            {"global_avg_pool", "gap"}, {"flatten", "flatten"}, {"softmax", "softmax"}, {"log_softmax", "log_softmax"}};
        auto p = prefix.find(op);
        layer l = make_layer(name_for(p == prefix.end() ? op : p->second), op, act_.at(x), "");
        l.output = l.name + ".out";
        if (fill) fill(l);
        act_[result.empty() ? n.outputs[0] : result] = l.output;
        m_.layers.push_back(l);
        std::vector<std::vector<int64_t>> ins;
        for (const std::string& name : l.inputs()) ins.push_back(shape_.at(name));
        return shape_[l.output] = layer_output_shape(m_, l, ins);
    }

    std::string store(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
        tensor t;
        t.shape = std::move(shape);
        t.values = std::move(values);
        return store(name, std::move(t));
    }
    std::string store(const std::string& name, tensor t) {
        m_.tensors[name] = std::move(t);
        return name;
    }

    /// A weight that DequantizeLinear makes from constant int8 or uint8 codes, as shrink's
    /// int8 encoding of a [out, ...] weight of `shape` (per tensor, or per output channel
    /// when the scales run along the ONNX weight's axis `out_axis`); `alpha` scales it.
    /// nullopt for any other weight, or a layout that encoding does not hold (scales along
    /// the inputs, blocks, other code types): then the dequantized floats import.
    std::optional<tensor> quantized_weight(const std::string& v, const std::vector<int64_t>& shape, int64_t out_axis, double alpha) const {
        auto p = producer_.find(v);
        if (p == producer_.end() || p->second->op != "DequantizeLinear") return std::nullopt;
        const node& dq = *p->second;
        if (dq.inputs.size() < 2 || dq.attr("block_size")) return std::nullopt;
        for (const std::string& i : dq.inputs)
            if (!i.empty() && !known_.count(i)) return std::nullopt;
        const nd_tensor& codes = value(dq.inputs[0]);
        const nd_tensor& scale = value(dq.inputs[1]);
        const nd_tensor* zero = dq.inputs.size() > 2 && !dq.inputs[2].empty() ? &value(dq.inputs[2]) : nullptr;
        if ((codes.type != element::i8 && codes.type != element::u8) || (zero && zero->type != codes.type) || codes.size() != volume(shape))
            return std::nullopt;
        if (zero && zero->size() != scale.size()) return std::nullopt;
        int64_t axis = dq.int_attr("axis", 1);
        if (axis < 0) axis += int64_t(codes.shape.size());
        const bool per_channel = scale.size() != 1;
        if (per_channel && (axis != out_axis || scale.shape != std::vector<int64_t>{shape[0]})) return std::nullopt;
        // uint8 codes with their zero points shifted by 128 give the same values as int8.
        const int shift = codes.type == element::u8 ? -128 : 0;
        const int64_t out = shape[0], cols = codes.size() / out;
        std::vector<int8_t> q(size_t(codes.size()));
        for (int64_t o = 0; o < out; ++o)
            for (int64_t c = 0; c < cols; ++c)  // a [in, out] weight (MatMul, Gemm without transB) is read transposed
                q[size_t(o * cols + c)] = int8_t(int(codes.data[size_t(out_axis == 0 ? o * cols + c : c * out + o)]) + shift);
        std::vector<float> scales;
        std::vector<int8_t> zero_points;
        bool symmetric = true;
        for (int64_t s = 0; s < scale.size(); ++s) {
            scales.push_back(float(alpha * scale.data[size_t(s)]));
            zero_points.push_back(int8_t((zero ? int(zero->data[size_t(s)]) : 0) + shift));
            symmetric = symmetric && zero_points.back() == 0;
        }
        tensor layout;
        layout.shape = shape;
        try {
            return make_quantized(layout, quant_spec{8, symmetric, per_channel ? uint64_t(cols) : 0}, std::move(q), std::move(scales),
                                  std::move(zero_points));
        } catch (const std::runtime_error&) {
            return std::nullopt;  // negative scales, say: the floats are still right
        }
    }

    void reshape(const node& n, const std::string& x) {
        const std::vector<int64_t> out = per_sample(n.outputs[0]);
        const std::vector<int64_t>& ours = shape_.at(act_.at(x));
        if (volume(out) != volume(ours)) refuse("it changes the number of values per sample");
        if (out == ours || (ours.size() == 1 && out.size() != 3)) return alias(n.outputs[0], x);
        if (ours.size() == 3 && out.size() != 3) {
            add(n, x, "flatten");
            return;
        }
        // Features (or an image) seen as an image of another shape: the same floats.
        add(n, x, "reshape", [&](layer& l) { l.shape = out; });
    }

    /// A node reading two or more activations: Add, Sub, Mul, Div (residual joins, gates)
    /// or Concat (branches).
    void join(const node& n, const std::vector<size_t>& data_inputs) {
        if (data_inputs.size() != n.inputs.size()) refuse("it mixes activations and constants");
        for (size_t i : data_inputs)
            if (shape_.at(act_.at(n.inputs[i])) != per_sample(n.inputs[i]))
                refuse("input '" + n.inputs[i] + "' has a shape shrink's graph does not keep (after a reshape it imported as a view)");
        const std::string& op = n.op;
        if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
            if (n.inputs.size() != 2) refuse("it needs two inputs");
            // The operand with the output's shape goes first; the other broadcasts to it.
            const std::vector<int64_t> out = per_sample(n.outputs[0]);
            size_t first = 0;
            if (per_sample(n.inputs[0]) != out) {
                if (per_sample(n.inputs[1]) != out) refuse("both operands broadcast; shrink broadcasts the second only");
                if (op == "Sub" || op == "Div") refuse("its first operand broadcasts to the second, which " + op + " cannot swap");
                first = 1;
            }
            std::string lower = op;
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
            add(n, n.inputs[first], lower, [&](layer& l) { l.more_inputs = {act_.at(n.inputs[1 - first])}; });
            return;
        }
        if (op == "Concat") {
            int64_t axis = n.int_attr("axis", 0);
            const int64_t full_rank = int64_t(value(n.inputs[0]).shape.size());
            if (axis < 0) axis += full_rank;
            if (axis <= 0 || axis >= full_rank) refuse("it joins along the batch axis, or outside the data's rank");
            add(n, n.inputs[0], "concat", [&](layer& l) {
                l.axis = axis - 1;
                for (size_t i = 1; i < n.inputs.size(); ++i) l.more_inputs.push_back(act_.at(n.inputs[i]));
            });
            return;
        }
        refuse("it reads two or more activations; shrink imports that for Add, Sub, Mul, Div and Concat only");
    }

    void transpose(const node& n, const std::string& x) {
        std::vector<int64_t> full = value(x).shape, perm;
        if (const attribute* p = n.attr("perm")) perm = p->ints;
        if (perm.empty())
            for (size_t i = full.size(); i-- > 0;) perm.push_back(int64_t(i));
        if (perm.size() != full.size() || perm[0] != 0) refuse("it moves the batch dimension");
        // The data stays where it is when the dimensions larger than 1 keep their order:
        // then the transpose is a reshape.
        std::vector<int64_t> moved;
        for (int64_t p : perm)
            if (p < 0 || p >= int64_t(full.size())) refuse("perm is out of range");
            else if (full[size_t(p)] != 1) moved.push_back(p);
        if (!std::is_sorted(moved.begin(), moved.end())) refuse("it reorders the data in memory, which shrink's model graph does not do");
        reshape(n, x);
    }

    void linear(const node& n, const std::string& x, size_t data_index) {
        if (data_index != 0) refuse("the activation must be the first input");
        if (value(x).shape.size() != 2 || rank(x) != 1) refuse("its input must be [batch, features] (add a Flatten before it)");
        if (n.op == "Gemm" && n.int_attr("transA", 0)) refuse("transA is not supported");
        const nd_tensor& wt = constant(n, 1, "weight");
        if (wt.shape.size() != 2) refuse("the weight must be 2-D");
        const int64_t in = shape_.at(act_.at(x))[0];
        const bool out_first = n.op == "Gemm" && n.int_attr("transB", 0);
        const int64_t out = out_first ? wt.shape[0] : wt.shape[1];
        if ((out_first ? wt.shape[1] : wt.shape[0]) != in) refuse("the weight does not take the input's features");
        const double alpha = n.op == "Gemm" ? n.float_attr("alpha", 1.0) : 1.0;
        std::vector<float> w(size_t(out * in));
        for (int64_t o = 0; o < out; ++o)
            for (int64_t i = 0; i < in; ++i)
                w[size_t(o * in + i)] = float(alpha * (out_first ? wt.data[size_t(o * in + i)] : wt.data[size_t(i * out + o)]));
        std::optional<tensor> codes = quantized_weight(n.inputs[1], {out, in}, out_first ? 0 : 1, alpha);
        std::string result = n.outputs[0];
        std::vector<float> bias;
        if (n.op == "Gemm" && n.inputs.size() > 2 && !n.inputs[2].empty()) {
            const nd_tensor& c = constant(n, 2, "bias");
            if (c.size() != out && c.size() != 1) refuse("the bias must have one value per output");
            for (int64_t o = 0; o < out; ++o) bias.push_back(float(n.float_attr("beta", 1.0) * c.data[size_t(c.size() == 1 ? 0 : o)]));
        } else if (n.op == "MatMul") {
            // MatMul + Add(constant bias), as PyTorch exports a Linear.
            if (const node* next = only_consumer(result); next && next->op == "Add") {
                const std::string other = next->inputs[0] == result ? next->inputs[1] : next->inputs[0];
                if (known_.count(other) && value(other).size() == out && value(next->outputs[0]).shape == value(result).shape) {
                    bias = as_floats(value(other));
                    result = next->outputs[0];
                    absorbed_.insert(result);
                }
            }
        }
        add(n, x, "linear", [&](layer& l) {
            l.weight = codes ? store(l.name + ".weight", std::move(*codes)) : store(l.name + ".weight", {out, in}, std::move(w));
            if (!bias.empty()) l.bias = store(l.name + ".bias", {out}, std::move(bias));
            l.input_quantization = input_quantization_of(x);
        }, result);
    }

    const node* only_consumer(const std::string& v) const {
        auto it = consumers_.find(v);
        if (it == consumers_.end() || it->second.size() != 1 || is_graph_output(v)) return nullptr;
        return it->second[0];
    }

    /// Pads of a window op: explicit, or from auto_pad and the output size the probe found.
    std::array<int64_t, 4> window_pads(const node& n, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                                       const std::array<int64_t, 2>& kernel, const std::array<int64_t, 2>& strides,
                                       const std::array<int64_t, 2>& dilations) const {
        std::array<int64_t, 4> pads{0, 0, 0, 0};
        const attribute* ap = n.attr("auto_pad");
        const std::string mode = ap && ap->s ? *ap->s : "NOTSET";
        if (mode == "NOTSET") {
            if (const attribute* p = n.attr("pads")) {
                if (p->ints.size() != 4) refuse("pads must have 4 values (2-D windows only)");
                std::copy(p->ints.begin(), p->ints.end(), pads.begin());
            }
        } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
            for (int d = 0; d < 2; ++d) {
                const int64_t total = std::max<int64_t>(0, (out[size_t(d) + 1] - 1) * strides[size_t(d)] + (kernel[size_t(d)] - 1) * dilations[size_t(d)] + 1 - in[size_t(d) + 1]);
                const int64_t small = total / 2, large = total - small;
                pads[size_t(d)] = mode == "SAME_UPPER" ? small : large;
                pads[size_t(d) + 2] = mode == "SAME_UPPER" ? large : small;
            }
        } else if (mode != "VALID") {
            refuse("auto_pad '" + mode + "' is not supported");
        }
        return pads;
    }

    static std::array<int64_t, 2> pair_attr(const node& n, const char* name, int64_t fallback) {
        const attribute* a = n.attr(name);
        if (!a || a->ints.empty()) return {fallback, fallback};
        if (a->ints.size() != 2) refuse(std::string(name) + " must have 2 values (2-D windows only)");
        return {a->ints[0], a->ints[1]};
    }

    void conv(const node& n, std::string x) {
        std::array<int64_t, 4> extra{0, 0, 0, 0};
        if (auto p = pending_pads_.find(x); p != pending_pads_.end()) {
            extra = p->second;
            x = pad_source_.at(x);
        }
        if (rank(x) != 3 || value(x).shape.size() != 4) refuse("shrink imports 2-D convolutions of [batch, C, H, W] data");
        const nd_tensor& wt = constant(n, 1, "weight");
        if (wt.shape.size() != 4) refuse("the weight must be [out, in/group, kh, kw]");
        const std::array<int64_t, 2> kernel{wt.shape[2], wt.shape[3]};
        window w;
        w.kernel = kernel;
        w.strides = pair_attr(n, "strides", 1);
        w.dilations = pair_attr(n, "dilations", 1);
        w.group = n.int_attr("group", 1);
        const std::vector<int64_t> in = shape_.at(act_.at(x)), out = per_sample(n.outputs[0]);
        w.pads = window_pads(n, in, out, kernel, w.strides, w.dilations);
        for (size_t i = 0; i < 4; ++i) w.pads[i] += extra[i];
        const int64_t channels = wt.shape[0];
        std::vector<float> weight = as_floats(wt), bias(size_t(channels), 0.0f);
        bool has_bias = false;
        if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
            const nd_tensor& b = constant(n, 2, "bias");
            if (b.size() != channels) refuse("the bias must have one value per output channel");
            bias = as_floats(b);
            has_bias = true;
        }
        std::string result = n.outputs[0];
        std::optional<tensor> codes = quantized_weight(n.inputs[1], wt.shape, 0, 1.0);
        // Conv then BatchNormalization (inference) is one conv: fold the normalization
        // into each output channel's weights and bias. Quantized weights keep their codes
        // instead, and the normalization its own layer (the runtime folds it when it runs).
        if (const node* next = only_consumer(result); !codes && next && next->op == "BatchNormalization" && next->inputs[0] == result) {
            if (auto affine = batchnorm_affine(*next, channels)) {
                const size_t per_channel = weight.size() / size_t(channels);
                for (size_t o = 0; o < size_t(channels); ++o) {
                    for (size_t k = 0; k < per_channel; ++k) weight[o * per_channel + k] *= affine->first[o];
                    bias[o] = bias[o] * affine->first[o] + affine->second[o];
                }
                has_bias = true;
                result = next->outputs[0];
                absorbed_.insert(result);
            }
        }
        const auto& shape = add(n, x, "conv", [&](layer& l) {
            l.win = w;
            l.weight = codes ? store(l.name + ".weight", std::move(*codes)) : store(l.name + ".weight", wt.shape, std::move(weight));
            if (has_bias) l.bias = store(l.name + ".bias", {channels}, std::move(bias));
            l.input_quantization = input_quantization_of(x);
        }, result);
        if (shape != out) refuse("its output shape differs from what ONNX computes");
    }

    /// BatchNormalization in inference form as a per-channel scale and shift; nullopt
    /// when its parameters are not constants or it runs in training mode.
    std::optional<std::pair<std::vector<float>, std::vector<float>>> batchnorm_affine(const node& n, int64_t channels) const {
        if (n.inputs.size() < 5 || n.int_attr("training_mode", 0) != 0) return std::nullopt;
        if (g_.opset < 9 && n.int_attr("spatial", 1) != 1) return std::nullopt;
        for (size_t i = 1; i < 5; ++i)
            if (!known_.count(n.inputs[i]) || value(n.inputs[i]).size() != channels) return std::nullopt;
        const double eps = n.float_attr("epsilon", 1e-5);
        std::vector<float> scale(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
        for (size_t c = 0; c < size_t(channels); ++c) {
            const double s = value(n.inputs[1]).data[c] / std::sqrt(value(n.inputs[4]).data[c] + eps);
            scale[c] = float(s);
            shift[c] = float(value(n.inputs[2]).data[c] - value(n.inputs[3]).data[c] * s);
        }
        return std::make_pair(std::move(scale), std::move(shift));
    }

    void batchnorm(const node& n, const std::string& x) {
        const int64_t channels = shape_.at(act_.at(x))[0];
        auto affine = batchnorm_affine(n, channels);
        if (!affine) refuse("only inference-mode BatchNormalization with constant parameters is supported");
        add_scale_shift(n, x, std::move(affine->first), std::move(affine->second));
    }

    void add_scale_shift(const node& n, const std::string& x, std::vector<float> scale, std::vector<float> shift) {
        const int64_t channels = int64_t(scale.size());
        add(n, x, "batchnorm", [&](layer& l) {
            l.weight = store(l.name + ".scale", {channels}, std::move(scale));
            l.bias = store(l.name + ".shift", {channels}, std::move(shift));
        });
    }

    /// x + c, x - c, c - x, x * c, x / c with c a scalar or one value per channel (or
    /// feature): a batchnorm layer (a per-channel scale and shift).
    void arithmetic(const node& n, const std::string& x, size_t data_index) {
        const std::string& op = n.op;
        const nd_tensor& c = constant(n, 1 - data_index, "other operand");
        const std::vector<int64_t>& ours = shape_.at(act_.at(x));
        const int64_t channels = ours[0];
        if (per_sample(n.outputs[0]) != per_sample(x)) refuse("the constant broadcasts beyond the activation's shape");
        // Which channel each constant element belongs to: a scalar, or [C] / [C, 1, 1]
        // (possibly with leading 1s) lined up with the channel axis.
        std::vector<int64_t> cs = c.shape;
        while (!cs.empty() && cs.front() == 1 && int64_t(cs.size()) > (ours.size() == 3 ? 3 : 1)) cs.erase(cs.begin());
        const bool scalar = c.size() == 1;
        const bool per_channel = c.size() == channels && (ours.size() == 1 ? cs == std::vector<int64_t>{channels}
                                                                            : cs == std::vector<int64_t>{channels, 1, 1});
        if (!scalar && !per_channel) refuse("shrink imports arithmetic with a scalar or a per-channel constant only");
        if (op == "Div" && data_index != 0) refuse("dividing a constant by an activation is not supported");
        if (op == "Div")
            for (double v : c.data)
                if (v == 0) refuse("division by zero");
        std::vector<float> scale(size_t(channels), 1.0f), shift(size_t(channels), 0.0f);
        for (size_t k = 0; k < size_t(channels); ++k) {
            const double v = c.data[scalar ? 0 : k];
            if (op == "Add") shift[k] = float(v);
            if (op == "Sub") data_index == 0 ? shift[k] = float(-v) : (scale[k] = -1.0f, shift[k] = float(v));
            if (op == "Mul") scale[k] = float(v);
            if (op == "Div") scale[k] = float(1.0 / v);
        }
        add_scale_shift(n, x, std::move(scale), std::move(shift));
    }

    void clip(const node& n, const std::string& x) {
        double lo = -FLT_MAX, hi = FLT_MAX;
        if (g_.opset < 11) {
            lo = n.float_attr("min", lo);
            hi = n.float_attr("max", hi);
        } else {
            if (n.inputs.size() > 1 && !n.inputs[1].empty()) lo = constant(n, 1, "min").data.at(0);
            if (n.inputs.size() > 2 && !n.inputs[2].empty()) hi = constant(n, 2, "max").data.at(0);
        }
        if (!(lo <= hi)) refuse("min must not exceed max");
        add(n, x, "clip", [&](layer& l) {
            l.alpha = float(lo);
            l.beta = float(hi);
        });
    }

    void pool(const node& n, const std::string& x) {
        if (rank(x) != 3 || value(x).shape.size() != 4) refuse("shrink imports 2-D pooling of [batch, C, H, W] data");
        window w;
        const attribute* k = n.attr("kernel_shape");
        if (!k || k->ints.size() != 2) refuse("kernel_shape must have 2 values");
        w.kernel = {k->ints[0], k->ints[1]};
        w.strides = pair_attr(n, "strides", 1);
        if (pair_attr(n, "dilations", 1) != std::array<int64_t, 2>{1, 1}) refuse("dilated pooling is not supported");
        w.count_include_pad = n.op == "AveragePool" && n.int_attr("count_include_pad", 0) != 0;
        const std::vector<int64_t> in = shape_.at(act_.at(x)), out = per_sample(n.outputs[0]);
        w.pads = window_pads(n, in, out, w.kernel, w.strides, {1, 1});
        if (n.int_attr("ceil_mode", 0)) {
            // Rounding the output size up is padding at the end that no window counts.
            if (w.count_include_pad) refuse("ceil_mode with count_include_pad is not supported");
            for (int d = 0; d < 2; ++d)
                w.pads[size_t(d) + 2] += std::max<int64_t>(0, (out[size_t(d) + 1] - 1) * w.strides[size_t(d)] + w.kernel[size_t(d)] -
                                                                  (in[size_t(d) + 1] + w.pads[size_t(d)] + w.pads[size_t(d) + 2]));
        }
        const auto& shape = add(n, x, n.op == "MaxPool" ? "max_pool" : "avg_pool", [&](layer& l) { l.win = w; });
        if (shape != out) refuse("its output shape differs from what ONNX computes");
    }

    void reduce_mean(const node& n, const std::string& x) {
        std::vector<int64_t> axes;
        if (const attribute* a = n.attr("axes")) axes = a->ints;
        else if (n.inputs.size() > 1 && !n.inputs[1].empty())
            axes = detail::ints_of(constant(n, 1, "axes"));  // refuses values past int64
        for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
        std::sort(axes.begin(), axes.end());
        if (rank(x) != 3 || axes != std::vector<int64_t>{2, 3}) refuse("only a mean over H and W of [batch, C, H, W] data is supported");
        const bool keep = n.int_attr("keepdims", 1) != 0;
        add(n, x, "global_avg_pool", {}, keep ? n.outputs[0] : n.outputs[0] + "#pooled");
        if (!keep) add(n, n.outputs[0] + "#pooled", "flatten");
    }

    /// QuantizeLinear then DequantizeLinear with the same per-tensor scale and zero point
    /// (as shrink exports static int8 inputs): the input quantization of the Gemm, MatMul
    /// and Conv nodes that read the result.
    void quantize_pair(const node& q, const std::string& x) {
        const node* dq = only_consumer(q.outputs[0]);
        if (!dq || dq->op != "DequantizeLinear" || dq->inputs.empty() || dq->inputs[0] != q.outputs[0])
            refuse("a QuantizeLinear is imported only when one DequantizeLinear alone reads it");
        auto parameters = [&](const node& n) {
            const nd_tensor& scale = constant(n, 1, "scale");
            if (scale.size() != 1) refuse("activations are imported with one scale per tensor only");
            nd_tensor zero{element::u8, {}, {0.0}};
            if (n.inputs.size() > 2 && !n.inputs[2].empty()) zero = constant(n, 2, "zero point");
            if (zero.size() != 1 || (zero.type != element::u8 && zero.type != element::i8))
                refuse("activations are imported with an 8-bit zero point only");
            // shrink's inputs take uint8 codes; int8 codes with the zero point moved by 128 are the same values.
            return std::make_pair(scale.data[0], zero.data[0] + (zero.type == element::i8 ? 128 : 0));
        };
        const auto [scale, zero] = parameters(q);
        if (parameters(*dq) != std::make_pair(scale, zero)) refuse("its DequantizeLinear uses another scale or zero point");
        if (!(scale > 0) || !std::isfinite(scale)) refuse("the scale must be positive and finite");
        const std::string& result = dq->outputs.at(0);
        for (const node* c : consumers_[result])
            if ((c->op != "Gemm" && c->op != "MatMul" && c->op != "Conv") || c->inputs[0] != result)
                refuse("its quantized value is read by a " + c->op + " node; shrink imports quantized activations only as the input of Gemm, MatMul and Conv");
        if (is_graph_output(result)) refuse("its quantized value is a graph output");
        act_[q.outputs[0]] = act_.at(x);
        act_[result] = act_.at(x);
        absorbed_.insert(result);
        input_quant_[result] = input_quant{float(scale), int32_t(zero)};
    }

    std::optional<input_quant> input_quantization_of(const std::string& x) const {
        auto it = input_quant_.find(x);
        return it == input_quant_.end() ? std::nullopt : std::optional<input_quant>(it->second);
    }

    void pad(const node& n, const std::string& x) {
        const attribute* mode = n.attr("mode");
        if (mode && mode->s && *mode->s != "constant") refuse("only constant padding is supported");
        std::vector<int64_t> pads;
        double fill = 0;
        if (g_.opset < 11) {
            if (const attribute* p = n.attr("pads")) pads = p->ints;
            fill = n.float_attr("value", 0.0);
        } else {
            pads = detail::ints_of(constant(n, 1, "pads"));  // refuses values past int64
            if (n.inputs.size() > 2 && !n.inputs[2].empty()) fill = constant(n, 2, "constant value").data.at(0);
        }
        if (n.inputs.size() > 3 && !n.inputs[3].empty()) refuse("the axes input is not supported");
        // [N, C, H, W] begins then ends: only H and W may be padded, with zeros.
        if (pads.size() != 8 || pads[0] || pads[1] || pads[4] || pads[5] || fill != 0 || rank(x) != 3)
            refuse("only zero padding of H and W before a Conv is supported");
        for (int64_t p : pads)
            if (p < 0) refuse("negative pads (cropping) are not supported");
        pending_pads_[n.outputs[0]] = {pads[2], pads[3], pads[6], pads[7]};
        pad_source_[n.outputs[0]] = x;
        act_[n.outputs[0]] = act_.at(x);
        for (const node* c : consumers_[n.outputs[0]])
            if (c->op != "Conv" || c->inputs[0] != n.outputs[0]) refuse("its output is read by something other than a Conv");
        if (is_graph_output(n.outputs[0])) refuse("it is a graph output");
    }

    const graph& g_;
    std::map<std::string, nd_tensor> values_;
    model& m_;
    std::set<std::string> known_;     // values that do not depend on the data (patterns.hpp)
    std::set<std::string> absorbed_;  // outputs of nodes taken into an earlier layer
    std::map<std::string, std::string> act_;            // ONNX value -> shrink activation
    std::map<std::string, std::vector<int64_t>> shape_;  // shrink activation -> per-sample shape
    std::map<std::string, std::vector<const node*>> consumers_;
    std::map<std::string, std::array<int64_t, 4>> pending_pads_;  // Pad outputs a Conv will take in
    std::map<std::string, std::string> pad_source_;
    std::map<std::string, input_quant> input_quant_;  // DequantizeLinear outputs of quantized activations
    std::map<std::string, const node*> producer_;
    std::map<std::string, int> counts_;
};

}  // namespace

model import_onnx(const std::filesystem::path& file) {
    const graph g = read_model(file);
    auto fail = [&](const std::string& m) -> model { throw input_error(source_mark{file.string(), 0, 0}, m); };
    if (g.inputs.size() != 1 || g.outputs.size() != 1) return fail("shrink imports graphs with one input and one output");
    const std::string x = g.inputs[0];
    auto shape = g.input_shapes.find(x);
    if (shape == g.input_shapes.end() || shape->second.empty()) return fail("input '" + x + "' has no declared shape");
    int64_t features = 1;
    for (size_t d = 1; d < shape->second.size(); ++d) {
        if (shape->second[d] <= 0) return fail("input '" + x + "' must have fixed sizes after the batch dimension");
        if (features > (int64_t(1) << 24) / shape->second[d]) return fail("input '" + x + "' has more than 2^24 features per sample");
        features *= shape->second[d];
    }
    // Learn every value's shape by running the graph once on a zero input.
    nd_tensor probe{element::f32, {probe_batch}, {}};
    probe.shape.insert(probe.shape.end(), shape->second.begin() + 1, shape->second.end());
    probe.data.assign(size_t(probe.size()), 0.0);
    std::map<std::string, nd_tensor> values;
    try {
        values = run_graph_values(g, {{x, probe}});
    } catch (const std::exception& e) {
        return fail(std::string("cannot import: ") + e.what());
    }

    model m;
    m.input_scale = 1.0f;  // preprocessing comes from the recipe's data.preprocess
    m.info = {{"made_by", "shrink import"}, {"source", file.filename().string()}, {"opset", std::to_string(g.opset)}};
    // GELU written out in elementary ops becomes one Gelu node, found by structure.
    const graph fused = fuse_patterns(g, values);
    importer in(fused, std::move(values), m);
    try {
        in.input(x, std::vector<int64_t>(shape->second.begin() + 1, shape->second.end()));
        in.run();
        m.output = in.activation_of(g.outputs[0]);
        if (m.output.empty() || m.output == m.input) return fail("the graph output '" + g.outputs[0] + "' is not computed by a layer");
        m.validate();
        // A weight that is not finite would be written into a file the safetensors reader
        // (and `shrink verify`) refuse: refuse it here, naming it.
        for (const auto& [name, t] : m.tensors) {
            const std::vector<float> v = t.decode();
            for (size_t i = 0; i < v.size(); ++i)
                if (!std::isfinite(v[i])) return fail("tensor '" + name + "' value " + std::to_string(i) + " is not finite (NaN or infinity)");
        }
    } catch (const import_failure& f) {
        return fail(f.message);
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    return m;
}

}  // namespace shrink::onnx_import

namespace shrink {

model load_any_model(const std::filesystem::path& file) {
    return file.extension() == ".onnx" ? onnx_import::import_onnx(file) : load_model(file);
}

}  // namespace shrink
