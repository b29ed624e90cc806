#include "model/verify.hpp"

namespace shrink {

std::vector<std::string> compare_models(const model& expected, const model& written) {
    std::vector<std::string> problems;
    auto add = [&](const std::string& m) {
        if (problems.size() < 20) problems.push_back(m);
    };
    if (expected.layers.size() != written.layers.size()) add("the graph has " + std::to_string(written.layers.size()) +
                                                              " layers, expected " + std::to_string(expected.layers.size()));
    for (const auto& [name, t] : expected.tensors) {
        auto it = written.tensors.find(name);
        if (it == written.tensors.end()) {
            add("tensor '" + name + "' is missing");
            continue;
        }
        const tensor& w = it->second;
        const std::string where = "tensor '" + name + "': ";
        if (w.shape != t.shape) add(where + "shape differs");
        if (bool(w.quant) != bool(t.quant)) add(where + (t.quant ? "is not quantized" : "is quantized"));
        else if (t.quant && (w.quant->bits != t.quant->bits || w.quant->symmetric != t.quant->symmetric ||
                             w.quant->group_size != t.quant->group_size || w.quant->table != t.quant->table ||
                             w.quant->books != t.quant->books || w.quant->double_quant != t.quant->double_quant))
            add(where + "quantization layout differs (bits, scheme, group size or table)");
        if (w.mask != t.mask) add(where + "sparsity mask differs");
        // The stored payloads, compared as they are: decoding both would double a large
        // model's memory for a moment, and equal payloads decode to equal values.
        const bool same = w.stored_type() == t.stored_type() &&
                          (t.quant ? w.q == t.q && w.scales == t.scales && w.zero_points == t.zero_points && w.table == t.table &&
                                         w.scale_q.codes == t.scale_q.codes && w.scale_q.steps == t.scale_q.steps &&
                                         w.scale_q.offset == t.scale_q.offset
                                   : w.values == t.values && w.half == t.half);
        if (!same) add(where + "values differ");
    }
    for (const auto& [name, t] : written.tensors)
        if (!expected.tensors.count(name)) add("unexpected tensor '" + name + "'");
    return problems;
}

std::vector<std::string> check_promises(const model& m, const encoding_promises& promised) {
    std::vector<std::string> problems;
    for (const auto& [fact, layers] : promised) {
        // Only quantization is unconditional for every layer in a stage's scope: pruners
        // and factorizers may leave a layer alone by their params (skip_last_layer, a
        // factorization that would not save parameters), so their facts say "may be".
        if (fact != "weights_quantized") continue;
        for (const std::string& name : layers) {
            std::vector<const layer*> now;
            for (const layer& l : m.layers)
                if (has_matrix(l.op) && (l.name == name || l.factor_of == name)) now.push_back(&l);
            if (now.empty()) {
                problems.push_back("layer '" + name + "' is missing");
                continue;
            }
            for (const layer* l : now) {
                const tensor& w = m.at(l->weight);
                const bool kept = fact == "weights_quantized" ? bool(w.quant)
                                  : fact == "weights_sparse"   ? w.sparse()
                                  : fact == "weights_factorized" ? !l->factor_of.empty()
                                                                 : true;
                if (!kept) problems.push_back("layer '" + l->name + "' should be " + fact.substr(8) + " but is not");
            }
        }
    }
    return problems;
}

}  // namespace shrink
