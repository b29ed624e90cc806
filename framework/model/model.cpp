#include "model/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <stdexcept>

namespace shrink {

uint64_t tensor::element_count() const {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
}

uint64_t tensor::kept_count() const {
    if (mask.empty()) return element_count();
    return static_cast<uint64_t>(std::count(mask.begin(), mask.end(), uint8_t{1}));
}

uint64_t tensor::scale_count(const std::vector<int64_t>& shape, const quant_spec& spec) {
    if (spec.group_size == 0) return 1;
    const uint64_t cols = shape.empty() ? 1 : uint64_t(shape.back());
    const uint64_t rows = shape.size() == 2 ? uint64_t(shape[0]) : 1;
    return rows * ((cols + spec.group_size - 1) / spec.group_size);
}

uint64_t tensor::scale_index(uint64_t i) const {
    if (!quant || quant->group_size == 0) return 0;
    const uint64_t c = cols();
    return (i / c) * ((c + quant->group_size - 1) / quant->group_size) + (i % c) / quant->group_size;
}

uint64_t tensor::stored_bytes() const {
    const uint64_t n = element_count();
    const uint64_t stored = sparse() ? kept_count() : n;
    uint64_t bytes = sparse() ? (n + 7) / 8 : 0;
    if (!quant) return bytes + stored * 4;
    bytes += quant->bits == 4 ? (stored + 1) / 2 : stored;
    bytes += scales.size() * 4 + zero_points.size();
    return bytes;
}

std::vector<float> tensor::decode() const {
    const uint64_t n = element_count();
    std::vector<float> out(n);
    if (!quant) {
        out = values;
    } else {
        for (uint64_t i = 0; i < n; ++i) {
            const uint64_t s = scale_index(i);
            const int32_t zp = zero_points.empty() ? 0 : zero_points[s];
            out[i] = scales[s] * static_cast<float>(int32_t(q[i]) - zp);
        }
    }
    if (!mask.empty())
        for (uint64_t i = 0; i < n; ++i)
            if (!mask[i]) out[i] = 0.0f;
    return out;
}

std::string tensor::encoding_summary() const {
    std::string s = quant ? "int" + std::to_string(quant->bits) + (quant->symmetric ? " sym" : " asym") : "f32";
    if (quant) {
        if (quant->group_size == 0) s += " per-tensor";
        else if (quant->group_size >= cols()) s += " per-channel";
        else s += " group " + std::to_string(quant->group_size);
    }
    if (sparse()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " sparse %.1f%%", 100.0 * (1.0 - double(kept_count()) / double(element_count())));
        s += buf;
    }
    return s;
}

const layer* model::find_layer(const std::string& name) const {
    for (const layer& l : layers)
        if (l.name == name) return &l;
    return nullptr;
}

layer* model::find_layer(const std::string& name) {
    return const_cast<layer*>(static_cast<const model*>(this)->find_layer(name));
}

const tensor& model::at(const std::string& tensor_name) const {
    auto it = tensors.find(tensor_name);
    if (it == tensors.end()) throw std::runtime_error("no tensor named '" + tensor_name + "'");
    return it->second;
}

tensor& model::at(const std::string& tensor_name) {
    return const_cast<tensor&>(static_cast<const model*>(this)->at(tensor_name));
}

void model::validate() const {
    if (input_features <= 0) throw std::runtime_error("the graph's input_features must be positive");
    if (layers.empty()) throw std::runtime_error("the graph has no layers");
    std::map<std::string, int64_t> width{{input, input_features}};  // activation name -> features
    std::set<std::string> names;
    for (const layer& l : layers) {
        const std::string where = "layer '" + l.name + "': ";
        if (l.name.empty() || !names.insert(l.name).second) throw std::runtime_error(where + "empty or duplicate name");
        auto in = width.find(l.input);
        if (in == width.end()) throw std::runtime_error(where + "input '" + l.input + "' is not produced before it");
        if (width.count(l.output)) throw std::runtime_error(where + "output '" + l.output + "' is produced twice");
        if (l.op == "relu" || l.op == "softmax") {
            width[l.output] = in->second;
            continue;
        }
        if (l.op != "linear") throw std::runtime_error(where + "unknown op '" + l.op + "' (known: linear, relu, softmax)");
        const tensor& w = at(l.weight);
        if (w.shape.size() != 2 || w.shape[0] <= 0 || w.shape[1] <= 0)
            throw std::runtime_error(where + "weight '" + l.weight + "' must be 2-D [out, in]");
        if (w.shape[1] != in->second)
            throw std::runtime_error(where + "weight takes " + std::to_string(w.shape[1]) + " inputs but '" + l.input +
                                     "' has " + std::to_string(in->second));
        if (!l.bias.empty()) {
            const tensor& b = at(l.bias);
            if (b.shape.size() != 1 || b.shape[0] != w.shape[0])
                throw std::runtime_error(where + "bias '" + l.bias + "' must be [" + std::to_string(w.shape[0]) + "]");
            if (b.quant) throw std::runtime_error(where + "bias '" + l.bias + "' cannot be quantized");
        }
        width[l.output] = w.shape[0];
    }
    if (!width.count(output)) throw std::runtime_error("the graph's output '" + output + "' is not produced by any layer");
    for (const auto& [name, t] : tensors) {
        const uint64_t n = t.element_count();
        const bool ok_payload = t.quant ? t.q.size() == n && t.values.empty() : t.values.size() == n && t.q.empty();
        if (!ok_payload) throw std::runtime_error("tensor '" + name + "': payload does not match its shape");
        if (!t.mask.empty() && t.mask.size() != n) throw std::runtime_error("tensor '" + name + "': mask size mismatch");
    }
}

uint64_t model::parameter_count() const {
    uint64_t n = 0;
    for (const auto& [name, t] : tensors) n += t.element_count();
    return n;
}

tensor make_quantized(const tensor& old, const quant_spec& spec, std::vector<int8_t> q, std::vector<float> scales,
                      std::vector<int8_t> zero_points) {
    if (spec.bits != 4 && spec.bits != 8) throw std::runtime_error("bits must be 4 or 8, got " + std::to_string(spec.bits));
    if (old.shape.size() != 2 && spec.group_size != 0)
        throw std::runtime_error("per-channel or per-group scales need a 2-D tensor");
    const uint64_t n = old.element_count();
    if (q.size() != n)
        throw std::runtime_error("got " + std::to_string(q.size()) + " quantized values for " + std::to_string(n) + " elements");
    const uint64_t want_scales = tensor::scale_count(old.shape, spec);
    if (scales.size() != want_scales)
        throw std::runtime_error("got " + std::to_string(scales.size()) + " scales, the layout needs " + std::to_string(want_scales));
    for (float s : scales)
        if (!std::isfinite(s) || s < 0) throw std::runtime_error("scales must be finite and non-negative");
    const int32_t lo = -(1 << (spec.bits - 1)), hi = (1 << (spec.bits - 1)) - 1;
    for (int8_t v : q)
        if (v < lo || v > hi)
            throw std::runtime_error("value " + std::to_string(v) + " is outside the " + std::to_string(spec.bits) + "-bit range");
    if (spec.symmetric) {
        zero_points.clear();
    } else {
        if (zero_points.size() != scales.size()) throw std::runtime_error("asymmetric quantization needs one zero point per scale");
        for (int8_t z : zero_points)
            if (z < lo || z > hi) throw std::runtime_error("zero point outside the value range");
    }
    tensor t;
    t.shape = old.shape;
    t.quant = spec;
    t.q = std::move(q);
    t.scales = std::move(scales);
    t.zero_points = std::move(zero_points);
    if (old.sparse()) {
        t.mask = old.mask;
        uint64_t broken = 0;
        for (uint64_t i = 0; i < n; ++i) {
            if (t.mask[i]) continue;
            const int8_t zero = t.zero_points.empty() ? 0 : t.zero_points[t.scale_index(i)];
            broken += t.q[i] != zero && t.scales[t.scale_index(i)] != 0.0f;
            // Canonical form: a pruned position holds its zero point (it is not stored,
            // and a reader restores it the same way).
            t.q[i] = zero;
        }
        if (broken)
            throw std::runtime_error("the quantized values are non-zero at " + std::to_string(broken) +
                                     " pruned positions; a quantizer must keep pruned weights at exactly zero");
    }
    return t;
}

}  // namespace shrink
