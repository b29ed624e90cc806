#include "model/surgery.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace shrink {

tensor dense_tensor(const std::string& name, const std::vector<int64_t>& shape, const float* values, uint64_t count,
                    const uint8_t* mask) {
    tensor next;
    next.shape = shape;
    next.values.assign(values, values + count);
    for (float v : next.values)
        if (!std::isfinite(v)) throw std::invalid_argument("tensor '" + name + "': values must be finite");
    if (mask) {
        next.mask.assign(mask, mask + count);
        for (uint64_t i = 0; i < count; ++i) {
            if (next.mask[i] > 1) throw std::invalid_argument("tensor '" + name + "': mask entries must be 0 or 1");
            if (!next.mask[i] && next.values[i] != 0.0f)
                throw std::invalid_argument("tensor '" + name + "': a pruned position (mask 0) must hold 0");
        }
    }
    return next;
}

void factorize_layer(model& m, const std::string& n, uint64_t rank, const float* first, const float* second) {
    layer* l = m.find_layer(n);
    if (!l || !has_matrix(l->op)) throw std::invalid_argument("'" + n + "' is not a linear or conv layer");
    if (l->win.group != 1)
        throw std::invalid_argument("'" + n + "' is a grouped conv: its weight is not one matrix, so it cannot be factorized");
    for (const layer& other : m.layers)
        if (&other != l && other.weight == l->weight)
            throw std::invalid_argument("'" + n + "' shares its weight '" + l->weight + "' with '" + other.name +
                                        "' (a tied embedding): factorizing it would change both");
    const tensor& w = m.at(l->weight);
    const int64_t out = int64_t(w.rows()), in = int64_t(w.cols());
    if (rank == 0 || int64_t(rank) > std::min(out, in))
        throw std::invalid_argument("rank " + std::to_string(rank) + " is outside [1, min(out, in)]");
    if (!first || !second) throw std::invalid_argument("factors are NULL");
    layer a = *l, b = *l;
    a.name = n + ".a";
    a.weight = n + ".a.weight";
    a.bias.clear();
    a.output = n + ".a.out";
    b.name = n + ".b";
    b.weight = n + ".b.weight";
    b.input = a.output;
    b.input_quantization.reset();
    a.factor_of = b.factor_of = l->factor_of.empty() ? n : l->factor_of;
    a.rank = b.rank = rank;
    if (m.tensors.count(a.weight) || m.tensors.count(b.weight) || m.find_layer(a.name) || m.find_layer(b.name))
        throw std::invalid_argument("layer '" + n + "' was already factorized");
    tensor ta, tb;
    ta.shape = {int64_t(rank), in};
    tb.shape = {out, int64_t(rank)};
    if (l->kind() == op_kind::conv) {
        // The first conv keeps the window and makes `rank` channels; the second mixes
        // them back to `out` with a 1x1 conv.
        ta.shape = {int64_t(rank), w.shape[1], w.shape[2], w.shape[3]};
        tb.shape = {out, int64_t(rank), 1, 1};
        b.win = window{};
    }
    ta.values.assign(first, first + rank * uint64_t(in));
    tb.values.assign(second, second + uint64_t(out) * rank);
    m.tensors.erase(l->weight);
    m.tensors[a.weight] = std::move(ta);
    m.tensors[b.weight] = std::move(tb);
    const auto at = m.layers.begin() + (l - m.layers.data());
    *at = b;
    m.layers.insert(at, a);
    m.validate();
}

void set_input_quantization(model& m, const std::string& name, float scale, int32_t zero_point) {
    layer* l = m.find_layer(name);
    if (!l || !has_matrix(l->op)) throw std::invalid_argument("'" + name + "' is not a linear or conv layer");
    if (!(scale > 0) || !std::isfinite(scale) || zero_point < 0 || zero_point > 255)
        throw std::invalid_argument("activation scale must be positive and the zero point in [0, 255]");
    l->input_quantization = input_quant{scale, zero_point};
}

void set_input_quantization_per_token(model& m, const std::string& name) {
    layer* l = m.find_layer(name);
    if (!l || l->kind() != op_kind::linear) throw std::invalid_argument("'" + name + "' is not a linear layer (per-token quantization reads rows of tokens)");
    l->input_quantization = input_quant{1, 0, true};
}

}  // namespace shrink
