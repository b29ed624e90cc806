#include "model/graph_schema.hpp"

#include <cmath>
#include <stdexcept>

namespace shrink {

using json = nlohmann::json;

json graph_to_json(const model& m) {
    json layers = json::array();
    for (const layer& l : m.layers) {
        // Attributes are written for the ops that read them (ops.def); an unknown op, refused
        // when the model is validated, writes none.
        const op_info* op = find_op(l.op);
        auto reads = [&](uint32_t attribute) { return op && op->has(attribute); };
        json j{{"name", l.name}, {"op", l.op}, {"input", l.input}, {"output", l.output}};
        if (!l.more_inputs.empty()) j["more_inputs"] = l.more_inputs;
        if (reads(OP_AXIS)) j["axis"] = l.axis;
        if (reads(OP_SHAPE)) j["shape"] = l.shape;
        if (!l.weight.empty()) j["weight"] = l.weight;
        if (!l.bias.empty()) j["bias"] = l.bias;
        if (l.input_quantization)
            j["input_quant"] = l.input_quantization->per_token ? json{{"per_token", true}}
                                                               : json{{"scale", l.input_quantization->scale}, {"zero_point", l.input_quantization->zero_point}};
        if (!l.factor_of.empty()) {
            j["factor_of"] = l.factor_of;
            j["rank"] = l.rank;
        }
        if (reads(OP_WINDOW)) {
            const window& w = l.win;
            j["window"] = {{"kernel", w.kernel}, {"strides", w.strides}, {"pads", w.pads}, {"dilations", w.dilations},
                           {"group", w.group}, {"count_include_pad", w.count_include_pad}};
        }
        if (reads(OP_ATTENTION))
            j["attention"] = {{"heads", l.attn.heads}, {"kv_heads", l.attn.kv_heads}, {"head_dim", l.attn.head_dim},
                              {"rope_theta", l.attn.rope_theta}};
        if (reads(OP_ALPHA | OP_BETA)) {
            j["alpha"] = l.alpha;
            j["beta"] = l.beta;
        }
        layers.push_back(std::move(j));
    }
    json g{{"input", m.input}, {"input_features", m.input_features}, {"input_scale", m.input_scale},
           {"output", m.output}, {"layers", layers}, {"info", m.info}};
    if (!m.input_shape.empty()) g["input_shape"] = m.input_shape;
    return g;
}

void graph_from_json(const json& graph, model& m) {
    m.input = graph.at("input").get<std::string>();
    m.input_features = graph.at("input_features").get<int64_t>();
    m.input_scale = graph.at("input_scale").get<float>();
    if (graph.contains("input_shape")) m.input_shape = graph.at("input_shape").get<std::vector<int64_t>>();
    m.output = graph.at("output").get<std::string>();
    if (graph.contains("info")) m.info = graph.at("info").get<std::map<std::string, std::string>>();
    for (const json& j : graph.at("layers")) {
        layer l;
        l.name = j.at("name").get<std::string>();
        l.op = j.at("op").get<std::string>();
        l.input = j.at("input").get<std::string>();
        if (j.contains("more_inputs")) l.more_inputs = j.at("more_inputs").get<std::vector<std::string>>();
        if (j.contains("axis")) l.axis = j.at("axis").get<int64_t>();
        if (j.contains("shape")) l.shape = j.at("shape").get<std::vector<int64_t>>();
        l.output = j.at("output").get<std::string>();
        if (j.contains("weight")) l.weight = j.at("weight").get<std::string>();
        if (j.contains("bias")) l.bias = j.at("bias").get<std::string>();
        if (j.contains("input_quant")) {
            const json& q = j.at("input_quant");
            if (q.contains("per_token")) {
                if (!q.at("per_token").get<bool>() || q.size() != 1)
                    throw std::invalid_argument("layer '" + l.name + "': input_quant per_token must be true and alone");
                l.input_quantization = input_quant{1, 0, true};
            } else {
                l.input_quantization = input_quant{q.at("scale").get<float>(), q.at("zero_point").get<int32_t>()};
                if (!(l.input_quantization->scale > 0) || !std::isfinite(l.input_quantization->scale) ||
                    l.input_quantization->zero_point < 0 || l.input_quantization->zero_point > 255)
                    throw std::invalid_argument("layer '" + l.name + "': input_quant needs a positive finite scale and a zero point in [0, 255]");
            }
        }
        if (j.contains("factor_of")) {
            l.factor_of = j.at("factor_of").get<std::string>();
            l.rank = j.at("rank").get<uint64_t>();
        }
        if (j.contains("window")) {
            const json& w = j.at("window");
            l.win.kernel = w.at("kernel").get<std::array<int64_t, 2>>();
            l.win.strides = w.at("strides").get<std::array<int64_t, 2>>();
            l.win.pads = w.at("pads").get<std::array<int64_t, 4>>();
            l.win.dilations = w.at("dilations").get<std::array<int64_t, 2>>();
            l.win.group = w.at("group").get<int64_t>();
            l.win.count_include_pad = w.at("count_include_pad").get<bool>();
        }
        if (j.contains("attention")) {
            const json& a = j.at("attention");
            l.attn = attention_spec{a.at("heads").get<int64_t>(), a.at("kv_heads").get<int64_t>(), a.at("head_dim").get<int64_t>(),
                                    a.at("rope_theta").get<double>()};
        }
        if (j.contains("alpha")) l.alpha = j.at("alpha").get<float>();
        if (j.contains("beta")) l.beta = j.at("beta").get<float>();
        m.layers.push_back(std::move(l));
    }
}

}  // namespace shrink
