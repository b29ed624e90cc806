#include "onnx/import.hpp"

#include "model/safetensors.hpp"
#include "onnx/interpreter.hpp"
#include "util/errors.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace shrink::onnx_import {

namespace {

constexpr int64_t probe_batch = 2;  // a stand-in batch size for learning shapes

std::vector<float> as_floats(const nd_tensor& t) { return std::vector<float>(t.data.begin(), t.data.end()); }

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

    std::set<std::string> constant;
    for (const auto& [name, t] : g.initializers) constant.insert(name);
    std::map<std::string, int> consumers;
    for (const node& n : g.nodes)
        for (const std::string& i : n.inputs) ++consumers[i];

    model m;
    m.input = "input";
    m.input_features = features;
    m.input_scale = 1.0f;  // preprocessing comes from the recipe's data.preprocess
    m.info = {{"made_by", "shrink import"}, {"source", file.filename().string()}, {"opset", std::to_string(g.opset)}};
    std::map<std::string, std::string> act{{x, m.input}};  // ONNX value -> shrink activation
    std::map<std::string, int64_t> width{{x, features}};
    std::set<std::string> folded;  // bias Adds taken into the linear layer before them
    int linear_count = 0, relu_count = 0;

    for (const node& n : g.nodes) {
        const std::string who = "node '" + (n.name.empty() ? n.op : n.name) + "' (" + n.op + ")";
        bool all_constant = !n.inputs.empty();
        for (const std::string& i : n.inputs) all_constant = all_constant && (i.empty() || constant.count(i));
        if (all_constant || n.op == "Constant") {
            for (const std::string& o : n.outputs) constant.insert(o);
            continue;
        }
        const std::string in = n.inputs.empty() ? "" : n.inputs[0];
        // Shape arithmetic (Shape, Size, then Gather, Concat, ... on their results) only
        // reads dimensions, which the probe run already settled: folded away.
        if (!act.count(in) || n.op == "Shape" || n.op == "Size") continue;
        if (folded.count(n.outputs[0])) continue;
        const nd_tensor& out_value = values.at(n.outputs[0]);
        const int64_t w_in = width.at(in);
        if (n.op == "Identity" || n.op == "Dropout" || n.op == "Flatten" || n.op == "Reshape" || n.op == "Squeeze" ||
            n.op == "Unsqueeze") {
            if (out_value.shape.empty() || out_value.shape[0] != probe_batch || out_value.size() != probe_batch * w_in)
                return fail(who + " does more than reshape [batch, features] data");
            act[n.outputs[0]] = act[in];
            width[n.outputs[0]] = w_in;
            continue;
        }
        if (values.at(in).shape.size() != 2 && (n.op == "Gemm" || n.op == "MatMul"))
            return fail(who + ": its input must be [batch, features] (add a Flatten before it)");
        if (n.op == "Gemm" || n.op == "MatMul") {
            if (n.inputs.size() < 2 || !constant.count(n.inputs[1])) return fail(who + ": the weight must be a constant");
            if (n.op == "Gemm" && n.int_attr("transA", 0)) return fail(who + ": transA is not supported");
            const nd_tensor& wt = values.at(n.inputs[1]);
            const bool out_first = n.op == "Gemm" && n.int_attr("transB", 0);
            const int64_t out = out_first ? wt.shape[0] : wt.shape[1];
            const double alpha = n.op == "Gemm" ? n.float_attr("alpha", 1.0) : 1.0;
            tensor w;
            w.shape = {out, w_in};
            w.values.resize(size_t(out * w_in));
            for (int64_t o = 0; o < out; ++o)
                for (int64_t i = 0; i < w_in; ++i)
                    w.values[size_t(o * w_in + i)] = float(alpha * (out_first ? wt.data[size_t(o * w_in + i)] : wt.data[size_t(i * out + o)]));
            std::string result = n.outputs[0];
            std::vector<float> bias;
            if (n.op == "Gemm" && n.inputs.size() > 2 && !n.inputs[2].empty()) {
                const nd_tensor& c = values.at(n.inputs[2]);
                if (c.size() != out && c.size() != 1) return fail(who + ": the bias must have one value per output");
                for (int64_t o = 0; o < out; ++o) bias.push_back(float(n.float_attr("beta", 1.0) * c.data[size_t(c.size() == 1 ? 0 : o)]));
            } else if (n.op == "MatMul" && consumers[result] == 1) {
                // MatMul + Add(constant bias), as PyTorch exports a Linear.
                for (const node& next : g.nodes)
                    if (next.op == "Add" && std::find(next.inputs.begin(), next.inputs.end(), result) != next.inputs.end()) {
                        const std::string other = next.inputs[0] == result ? next.inputs[1] : next.inputs[0];
                        if (!constant.count(other) || values.at(other).size() != out) break;
                        bias = as_floats(values.at(other));
                        folded.insert(next.outputs[0]);
                        result = next.outputs[0];
                    }
            }
            const std::string name = "fc" + std::to_string(++linear_count);
            m.tensors[name + ".weight"] = std::move(w);
            if (!bias.empty()) m.tensors[name + ".bias"] = tensor{{out}, bias, {}, {}, {}, {}, {}};
            m.layers.push_back(make_layer(name, "linear", act[in], name + ".out", name + ".weight", bias.empty() ? "" : name + ".bias"));
            act[result] = name + ".out";
            width[result] = out;
            continue;
        }
        if (n.op == "Relu") {
            const std::string name = "relu" + std::to_string(++relu_count);
            m.layers.push_back(make_layer(name, "relu", act[in], name + ".out"));
            act[n.outputs[0]] = name + ".out";
            width[n.outputs[0]] = w_in;
            continue;
        }
        if (n.op == "Softmax") {
            const int64_t axis = n.int_attr("axis", g.opset >= 13 ? -1 : 1);
            if (values.at(in).shape.size() != 2 || (axis != -1 && axis != 1)) return fail(who + ": only a softmax over the features is supported");
            m.layers.push_back(make_layer("softmax", "softmax", act[in], "softmax.out"));
            act[n.outputs[0]] = "softmax.out";
            width[n.outputs[0]] = w_in;
            continue;
        }
        return fail(who + " is not supported by shrink's model graph yet: it runs MLP classifiers (Gemm or MatMul+Add, "
                          "Relu, Softmax, and reshapes); convolutional models need the general runtime to come");
    }
    auto output = act.find(g.outputs[0]);
    if (output == act.end()) return fail("the graph output '" + g.outputs[0] + "' does not come from the input");
    m.output = output->second;
    try {
        m.validate();
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
