#include "model/model.hpp"

#include "model/ops.hpp"

#include <shrink/abi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
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

uint64_t tensor::matrix_rows(const std::vector<int64_t>& shape) { return shape.size() >= 2 ? uint64_t(shape[0]) : 1; }

uint64_t tensor::matrix_cols(const std::vector<int64_t>& shape) {
    uint64_t n = 1;
    for (size_t d = shape.size() >= 2 ? 1 : 0; d < shape.size(); ++d) n *= uint64_t(shape[d]);
    return n;
}

namespace {
/// Groups of `group` in a row of `cols`, rounded up, without the overflow of
/// (cols + group - 1) / group: a file's group_size may be anything up to 2^64 - 1.
uint64_t groups_per_row(uint64_t cols, uint64_t group) { return cols / group + (cols % group != 0); }
}  // namespace

const std::array<float, 16> nf4_table SHRINK_NF4_TABLE;

scale_codes scale_codes::of(const std::vector<float>& scales) {
    scale_codes c;
    double sum = 0;
    for (float s : scales) sum += s;
    c.offset = scales.empty() ? 0.0f : float(sum / double(scales.size()));
    std::vector<int8_t> codes(scales.size());
    std::vector<float> steps;
    for (size_t first = 0; first < scales.size(); first += block) {
        const size_t last = std::min(scales.size(), first + size_t(block));
        float top = 0;
        for (size_t i = first; i < last; ++i) top = std::max(top, std::fabs(scales[i] - c.offset));
        const float step = top / 127.0f;
        steps.push_back(step);
        for (size_t i = first; i < last; ++i)
            codes[i] = step > 0 ? int8_t(std::clamp(std::nearbyint((scales[i] - c.offset) / step), -127.0f, 127.0f)) : int8_t(0);
    }
    c.codes = std::move(codes);
    c.steps = std::move(steps);
    return c;
}

std::vector<float> scale_codes::decoded() const {
    std::vector<float> out(codes.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = float(codes[i]) * steps[i / block] + offset;
    return out;
}

uint64_t tensor::scale_count(const std::vector<int64_t>& shape, const quant_spec& spec) {
    if (spec.table == "kmeans") return 0;
    if (spec.group_size == 0) return 1;
    return matrix_rows(shape) * groups_per_row(matrix_cols(shape), spec.group_size);
}

uint64_t tensor::scale_index(uint64_t i) const {
    if (!quant || quant->group_size == 0) return 0;
    const uint64_t c = cols();
    return (i / c) * groups_per_row(c, quant->group_size) + (i % c) / quant->group_size;
}

uint64_t tensor::stored_bytes() const {
    const uint64_t n = element_count();
    const uint64_t stored = sparse() ? kept_count() : n;
    uint64_t bytes = sparse() ? (n + 7) / 8 : 0;
    if (!quant) return bytes + stored * (type == dtype::f32 ? 4 : 2);
    bytes += quant->bits == 4 ? (stored + 1) / 2 : stored;
    bytes += quant->double_quant ? scale_q.codes.size() + scale_q.steps.size() * 4 + 4 : scales.size() * 4;
    bytes += zero_points.size();
    if (quant->table == "kmeans") bytes += table.size() * 4;  // nf4's table is fixed: not stored
    return bytes;
}

std::vector<float> tensor::decode() const {
    std::vector<float> out(element_count());
    decode_range(0, out.size(), out.data());
    return out;
}

void tensor::decode_range(uint64_t begin, uint64_t count, float* out) const {
    if (begin > element_count() || count > element_count() - begin)
        throw std::out_of_range("elements [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                                ") are outside the tensor's " + std::to_string(element_count()));
    if (!quant && type == dtype::f32) {
        std::copy(values.begin() + begin, values.begin() + begin + count, out);
    } else if (!quant) {
        widen(type, half.data() + begin, out, count);
    } else if (!quant->table.empty()) {
        const int32_t half = 1 << (quant->bits - 1);
        const uint64_t c = cols();
        for (uint64_t i = 0; i < count; ++i) {
            const uint64_t book = quant->books > 1 ? (begin + i) / c : 0;
            const float v = table[book * uint64_t(2 * half) + uint64_t(q[begin + i] + half)];
            out[i] = scales.empty() ? v : v * scales[scale_index(begin + i)];
        }
    } else {
        for (uint64_t i = 0; i < count; ++i) {
            const uint64_t s = scale_index(begin + i);
            const int32_t zp = zero_points.empty() ? 0 : zero_points[s];
            out[i] = scales[s] * static_cast<float>(int32_t(q[begin + i]) - zp);
        }
    }
    if (!mask.empty())
        for (uint64_t i = 0; i < count; ++i)
            if (!mask[begin + i]) out[i] = 0.0f;
}

std::string tensor::encoding_summary() const {
    std::string s = quant ? "int" + std::to_string(quant->bits) + (quant->symmetric ? " sym" : " asym") : dtype_name(type);
    if (quant && quant->table == "kmeans") {
        s = "kmeans" + std::to_string(quant->bits) + (quant->books > 1 ? " table per row" : " table");
    } else if (quant && !quant->table.empty()) {
        s = quant->table + " group " + std::to_string(quant->group_size) + (quant->double_quant ? " double-quant" : "");
    } else if (quant) {
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

const std::vector<std::string>& known_ops() {
    static const std::vector<std::string> ops = [] {
        std::vector<std::string> names;
        for (const op_info& op : op_table()) names.push_back(op.name);
        return names;
    }();
    return ops;
}

layer make_layer(std::string name, std::string op, std::string input, std::string output, std::string weight, std::string bias) {
    layer l;
    l.name = std::move(name);
    l.op = std::move(op);
    l.input = std::move(input);
    l.output = std::move(output);
    l.weight = std::move(weight);
    l.bias = std::move(bias);
    return l;
}

bool has_matrix(const std::string& op) {
    const op_info* o = find_op(op);
    return o && o->has(OP_MATRIX);
}

bool is_binary(const std::string& op) {
    const op_info* o = find_op(op);
    return o && o->has(OP_BINARY);
}

std::vector<std::string> layer::inputs() const {
    std::vector<std::string> all{input};
    all.insert(all.end(), more_inputs.begin(), more_inputs.end());
    return all;
}

std::vector<int64_t> layer_output_shape(const model& m, const layer& l, const std::vector<std::vector<int64_t>>& ins) {
    const std::string where = "layer '" + l.name + "': ";
    const op_info* op = find_op(l.op);
    if (!op) {
        std::string known;
        for (const std::string& name : known_ops()) known.append(known.empty() ? "" : ", ").append(name);
        throw std::runtime_error(where + "unknown op '" + l.op + "' (known: " + known + ")");
    }
    const size_t operands = op->inputs ? size_t(op->inputs) : std::max<size_t>(ins.size(), 2);
    if (ins.size() != operands || l.more_inputs.size() + 1 != operands)
        throw std::runtime_error(where + l.op + " takes " + std::to_string(operands) + " input(s), got " + std::to_string(l.more_inputs.size() + 1));
    return op->shape(m, l, ins, where);
}

std::map<std::string, std::vector<int64_t>> model::activation_shapes() const {
    if (input_features <= 0) throw std::runtime_error("the graph's input_features must be positive");
    std::vector<int64_t> in_shape = input_shape.empty() ? std::vector<int64_t>{input_features} : input_shape;
    int64_t n = 1;
    for (int64_t d : in_shape) {
        if (d <= 0 || d > max_extent) throw std::runtime_error("the graph's input_shape " + dims_text(in_shape) + " is malformed");
        n *= d;
    }
    if (n != input_features)
        throw std::runtime_error("the graph's input_shape " + dims_text(in_shape) + " does not hold " + std::to_string(input_features) + " features");
    std::map<std::string, std::vector<int64_t>> shapes{{input, in_shape}};
    std::set<std::string> names;
    for (const layer& l : layers) {
        const std::string where = "layer '" + l.name + "': ";
        if (l.name.empty() || !names.insert(l.name).second) throw std::runtime_error(where + "empty or duplicate name");
        std::vector<std::vector<int64_t>> ins;
        for (const std::string& name : l.inputs()) {
            auto in = shapes.find(name);
            if (in == shapes.end()) throw std::runtime_error(where + "input '" + name + "' is not produced before it");
            ins.push_back(in->second);
        }
        if (shapes.count(l.output)) throw std::runtime_error(where + "output '" + l.output + "' is produced twice");
        std::vector<int64_t> out = layer_output_shape(*this, l, ins);
        int64_t size = 1;
        for (int64_t d : out) size *= d;
        if (size > (int64_t(1) << 28)) throw std::runtime_error(where + "its output " + dims_text(out) + " is too large");
        shapes[l.output] = std::move(out);
    }
    return shapes;
}

void model::validate() const {
    if (layers.empty()) throw std::runtime_error("the graph has no layers");
    const auto shapes = activation_shapes();
    if (!shapes.count(output)) throw std::runtime_error("the graph's output '" + output + "' is not produced by any layer");
    for (const auto& [name, t] : tensors) {
        const uint64_t n = t.element_count();
        const bool f32 = t.type == dtype::f32;
        const bool ok_payload = t.quant ? t.q.size() == n && t.values.empty() && t.half.empty()
                                        : is_float(t.type) && (f32 ? t.values.size() : t.half.size()) == n &&
                                              (f32 ? t.half.empty() : t.values.empty()) && t.q.empty();
        if (!ok_payload) throw std::runtime_error("tensor '" + name + "': payload does not match its shape");
        if (!t.mask.empty() && !t.quant && !f32) throw std::runtime_error("tensor '" + name + "': a sparse tensor holds f32 values");
        if (!t.mask.empty() && t.mask.size() != n) throw std::runtime_error("tensor '" + name + "': mask size mismatch");
    }
}

uint64_t model::parameter_count() const {
    uint64_t n = 0;
    for (const auto& [name, t] : tensors) n += t.element_count();
    return n;
}

tensor make_table_quantized(const tensor& old, const quant_spec& spec, std::vector<int8_t> q, std::vector<float> scales,
                            std::vector<float> table, const scale_codes* stored) {
    if (stored) {
        if (!spec.double_quant) throw std::runtime_error("scale codes without double quantization");
        if (stored->steps.size() != (stored->codes.size() + scale_codes::block - 1) / scale_codes::block)
            throw std::runtime_error("got " + std::to_string(stored->steps.size()) + " scale steps for " +
                                     std::to_string(stored->codes.size()) + " scale codes");
        for (float v : stored->steps.to_vector())
            if (!std::isfinite(v) || v < 0) throw std::runtime_error("scale steps must be finite and non-negative");
        if (!std::isfinite(stored->offset)) throw std::runtime_error("the scales' offset must be finite");
        scales = stored->decoded();
    }
    if (spec.bits != 4 && spec.bits != 8) throw std::runtime_error("bits must be 4 or 8, got " + std::to_string(spec.bits));
    const uint64_t n = old.element_count(), levels = uint64_t(1) << spec.bits;
    if (q.size() != n) throw std::runtime_error("got " + std::to_string(q.size()) + " codes for " + std::to_string(n) + " elements");
    if (spec.table == "nf4") {
        if (spec.bits != 4) throw std::runtime_error("nf4 codes are 4 bits");
        if (spec.group_size == 0 || old.shape.size() < 2) throw std::runtime_error("nf4 needs a matrix and a group size");
        table.assign(nf4_table.begin(), nf4_table.end());
        if (scales.size() != tensor::scale_count(old.shape, spec))
            throw std::runtime_error("got " + std::to_string(scales.size()) + " scales, the layout needs " +
                                     std::to_string(tensor::scale_count(old.shape, spec)));
        for (float s : scales)
            if (!std::isfinite(s)) throw std::runtime_error("scales must be finite");
    } else if (spec.table == "kmeans") {
        if (spec.books != 1 && (spec.books != old.rows() || old.shape.size() < 2))
            throw std::runtime_error("a k-means tensor has one table or one per row, not " + std::to_string(spec.books));
        if (table.size() != spec.books * levels)
            throw std::runtime_error("got " + std::to_string(table.size()) + " table values, the layout needs " +
                                     std::to_string(spec.books * levels));
        if (!scales.empty() || spec.double_quant) throw std::runtime_error("a k-means tensor has no scales");
        if (spec.group_size != 0) throw std::runtime_error("a k-means tensor has no groups");
    } else {
        throw std::runtime_error("unknown table encoding '" + spec.table + "'");
    }
    for (float v : table)
        if (!std::isfinite(v)) throw std::runtime_error("table values must be finite");
    if (!spec.symmetric) throw std::runtime_error("a table encoding has no zero points");
    const int32_t lo = -int32_t(levels / 2), hi = int32_t(levels / 2) - 1;
    for (int8_t v : q)
        if (v < lo || v > hi) throw std::runtime_error("code " + std::to_string(v) + " is outside the " + std::to_string(spec.bits) + "-bit range");
    tensor t;
    t.shape = old.shape;
    t.quant = spec;
    t.q = std::move(q);
    t.table = std::move(table);
    if (spec.double_quant) {
        t.scale_q = stored ? *stored : scale_codes::of(scales);
        t.scales = t.scale_q.decoded();
    } else {
        t.scales = std::move(scales);
    }
    if (old.sparse()) {
        t.mask = old.mask;
        int8_t* codes = t.q.write();
        for (uint64_t i = 0; i < n; ++i)
            if (!t.mask[i]) codes[i] = int8_t(lo);  // canonical: not stored, restored so by a reader
    }
    return t;
}

tensor make_quantized(const tensor& old, const quant_spec& spec, std::vector<int8_t> q, std::vector<float> scales,
                      std::vector<int8_t> zero_points) {
    if (!spec.table.empty()) throw std::runtime_error("a table encoding is made by make_table_quantized");
    if (spec.bits != 4 && spec.bits != 8) throw std::runtime_error("bits must be 4 or 8, got " + std::to_string(spec.bits));
    if (old.shape.size() < 2 && spec.group_size != 0)
        throw std::runtime_error("per-channel or per-group scales need a tensor of 2 or more dimensions");
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
        int8_t* codes = t.q.write();
        for (uint64_t i = 0; i < n; ++i) {
            if (t.mask[i]) continue;
            const int8_t zero = t.zero_points.empty() ? 0 : t.zero_points[t.scale_index(i)];
            broken += codes[i] != zero && t.scales[t.scale_index(i)] != 0.0f;
            // Canonical form: a pruned position holds its zero point (it is not stored,
            // and a reader restores it the same way).
            codes[i] = zero;
        }
        if (broken)
            throw std::runtime_error("the quantized values are non-zero at " + std::to_string(broken) +
                                     " pruned positions; a quantizer must keep pruned weights at exactly zero");
    }
    return t;
}

void quantize_row_per_token(float* row, uint64_t count) {
    float absmax = 0;
    for (uint64_t i = 0; i < count; ++i) absmax = std::max(absmax, std::fabs(row[i]));
    // A row of zeros stays zeros; FLT_MIN keeps the division finite, as the ONNX export's Max does.
    const float scale = std::max(absmax, std::numeric_limits<float>::min()) / 127.0f;
    for (uint64_t i = 0; i < count; ++i) row[i] = std::clamp(std::nearbyint(row[i] / scale), -127.0f, 127.0f) * scale;
}

}  // namespace shrink
