#include "model/outline.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

namespace shrink {

uint64_t tensor_memory_bytes(uint64_t elements, int bits, bool sparse) {
    return elements * (bits == 32 ? 4 : bits == 16 ? 2 : 1) + (sparse ? elements : 0);
}

model_outline outline_of(const model& m) {
    model_outline o;
    o.input_features = m.input_features;
    o.info = m.info;
    for (const auto& [name, t] : m.tensors) {
        o.parameters += t.element_count();
        o.memory_bytes += tensor_memory_bytes(t.element_count(), t.quant ? t.quant->bits : t.type == dtype::f32 ? 32 : 16, t.sparse());
    }
    const auto shapes = m.activation_shapes();
    auto size_of = [&](const std::string& activation) {
        int64_t n = 1;
        for (int64_t d : shapes.at(activation)) n *= d;
        return n;
    };
    for (const auto& [name, shape] : shapes) o.activation_floats += size_of(name);
    std::map<std::string, size_t> last_reader;  // activation -> index of the last layer reading it
    for (size_t i = 0; i < m.layers.size(); ++i)
        for (const std::string& name : m.layers[i].inputs()) last_reader[name] = i;
    int64_t live = shapes.count(m.input) ? size_of(m.input) : 0;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const layer& l = m.layers[i];
        if (shapes.count(l.output)) live += size_of(l.output);  // written while its inputs are still read
        o.live_activation_floats = std::max(o.live_activation_floats, live);
        const std::vector<std::string> inputs = l.inputs();
        for (const std::string& name : std::set<std::string>(inputs.begin(), inputs.end()))
            if (last_reader[name] == i && shapes.count(name)) live -= size_of(name);
    }
    std::map<std::string, std::set<int>> upstream{{m.input, {}}};  // activation -> layers it depends on
    for (const layer& l : m.layers) {
        model_outline::layer_info info{l.name, l.op, 0, 0, size_of(l.input), l.input, {}};
        if (has_matrix(l.op)) {
            auto w = m.tensors.find(l.weight);
            const size_t rank = find_op(l.op)->has(OP_WINDOW) ? 4 : 2;  // conv's [out, in/group, kh, kw]
            if (w == m.tensors.end() || w->second.shape.size() != rank)
                throw std::runtime_error("layer '" + l.name + "': weight '" + l.weight + "' is not a " + std::to_string(rank) + "-D tensor");
            info.out = int64_t(w->second.rows());
            info.in = int64_t(w->second.cols());
        }
        if (l.op == "embedding" && m.input_features == 2)  // [token id, position] a row
            if (auto w = m.tensors.find(l.weight); w != m.tensors.end() && !w->second.shape.empty()) o.vocab = w->second.shape[0];
        std::set<int> deps;
        for (const std::string& name : l.inputs()) {
            auto in = upstream.find(name);
            if (in == upstream.end()) throw std::runtime_error("layer '" + l.name + "': input '" + name + "' is not produced before it");
            deps.insert(in->second.begin(), in->second.end());
        }
        const int index = int(o.layers.size());
        for (int d : deps) o.layers[size_t(d)].downstream.push_back(index);
        deps.insert(index);
        upstream[l.output] = deps;
        o.layers.push_back(std::move(info));
    }
    return o;
}

int model_outline::find(const std::string& layer) const {
    for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].name == layer) return int(i);
    return -1;
}

std::vector<std::string> model_outline::names() const {
    std::vector<std::string> out;
    for (const auto& l : layers) out.push_back(l.name);
    return out;
}

}  // namespace shrink
