#include "onnx/onnx_file.hpp"

#include "util/errors.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <queue>
#include <set>

namespace shrink::onnx_import {

namespace fs = std::filesystem;

const attribute* node::attr(const std::string& n) const {
    auto it = attributes.find(n);
    return it == attributes.end() ? nullptr : &it->second;
}

int64_t node::int_attr(const std::string& n, int64_t fallback) const {
    const attribute* a = attr(n);
    return a && a->i ? *a->i : fallback;
}

double node::float_attr(const std::string& n, double fallback) const {
    const attribute* a = attr(n);
    return a && a->f ? *a->f : fallback;
}

namespace {

constexpr uint64_t onnx_max_bytes = uint64_t(2) << 30;

double half_to_double(uint16_t h) {
    const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    double v;
    if (exponent == 0) v = std::ldexp(double(mantissa), -24);
    else if (exponent == 31) v = mantissa ? std::nan("") : HUGE_VAL;
    else v = std::ldexp(double(mantissa | 0x400), exponent - 25);
    return sign ? -v : v;
}

double bfloat_to_double(uint16_t b) {
    const uint32_t bits = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

struct type_info {
    element e;
    size_t bytes;
};

std::optional<type_info> type_of(int32_t t) {
    using T = onnx::TensorProto;
    switch (t) {
        case T::FLOAT: return type_info{element::f32, 4};
        case T::DOUBLE: return type_info{element::f64, 8};
        case T::FLOAT16: return type_info{element::f16, 2};
        case T::BFLOAT16: return type_info{element::bf16, 2};
        case T::INT8: return type_info{element::i8, 1};
        case T::UINT8: return type_info{element::u8, 1};
        case T::INT16: return type_info{element::i16, 2};
        case T::UINT16: return type_info{element::u16, 2};
        case T::INT32: return type_info{element::i32, 4};
        case T::UINT32: return type_info{element::u32, 4};
        case T::INT64: return type_info{element::i64, 8};
        case T::UINT64: return type_info{element::u64, 8};
        case T::BOOL: return type_info{element::boolean, 1};
        default: return std::nullopt;
    }
}

double decode_raw(const char* p, element e) {
    auto get = [&](auto v) {
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    switch (e) {
        case element::f32: return get(float{});
        case element::f64: return get(double{});
        case element::f16: return half_to_double(get(uint16_t{}));
        case element::bf16: return bfloat_to_double(get(uint16_t{}));
        case element::i8: return get(int8_t{});
        case element::u8: return get(uint8_t{});
        case element::i16: return get(int16_t{});
        case element::u16: return get(uint16_t{});
        case element::i32: return get(int32_t{});
        case element::u32: return get(uint32_t{});
        case element::i64: return double(get(int64_t{}));
        case element::u64: return double(get(uint64_t{}));
        case element::boolean: return get(uint8_t{}) ? 1 : 0;
    }
    return 0;
}

/// `where` names the tensor in errors; `base` is the model's directory for external data.
nd_tensor convert(const onnx::TensorProto& t, const std::string& where, const fs::path& base) {
    auto fail = [&](const std::string& m) -> nd_tensor { throw std::runtime_error(where + ": " + m); };
    const auto info = type_of(t.data_type());
    if (!info) return fail("element type " + std::to_string(t.data_type()) + " is not supported");
    nd_tensor out;
    out.type = info->e;
    uint64_t count = 1;
    for (int64_t d : t.dims()) {
        if (d < 0) return fail("negative dimension");
        if (d != 0 && count > (uint64_t(1) << 40) / uint64_t(d)) return fail("too many elements");
        count *= uint64_t(d);
        out.shape.push_back(d);
    }
    std::string raw;
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
        std::string location;
        uint64_t offset = 0, length = 0;
        bool has_length = false;
        auto number = [&](const std::string& key, const std::string& text) {
            const auto v = parse_decimal_int(text);
            if (!v || *v < 0) fail("external data " + key + " '" + text + "' is not a non-negative decimal integer");
            return uint64_t(*v);
        };
        for (const auto& kv : t.external_data()) {
            if (kv.key() == "location") location = kv.value();
            else if (kv.key() == "offset") offset = number("offset", kv.value());
            else if (kv.key() == "length") length = number("length", kv.value()), has_length = true;
        }
        // libonnx 1.12 does not check that external data stays beside the model (the
        // CVE-2022-25882 class): refuse absolute paths, '..' and anything resolving outside.
        const fs::path rel(location);
        if (location.empty() || rel.is_absolute()) return fail("external data location '" + location + "' must be a relative path");
        for (const auto& part : rel)
            if (part == "..") return fail("external data location '" + location + "' leaves the model's directory");
        const fs::path file = fs::weakly_canonical(base / rel);
        const fs::path root = fs::weakly_canonical(base);
        const std::string fs_str = file.string(), root_str = root.string() + "/";
        if (fs_str.compare(0, root_str.size(), root_str) != 0)
            return fail("external data location '" + location + "' resolves outside the model's directory");
        const uint64_t size = fs::is_regular_file(file) ? fs::file_size(file) : 0;
        if (!fs::is_regular_file(file)) return fail("external data file '" + location + "' not found");
        if (!has_length) length = count * info->bytes;
        if (offset > size || length > size - offset) return fail("external data range is outside '" + location + "'");
        if (length != count * info->bytes)
            return fail("external data holds " + std::to_string(length) + " bytes, its shape needs " + std::to_string(count * info->bytes));
        std::ifstream in(file, std::ios::binary);
        raw.resize(length);
        in.seekg(std::streamoff(offset));
        in.read(raw.data(), std::streamsize(length));
    } else if (t.has_raw_data()) {
        raw = t.raw_data();
    }
    // The claimed shape is compared with the data actually there before anything is
    // allocated for it: a few bytes claiming 2^40 elements must cost nothing.
    if (!raw.empty() || (count == 0 && t.has_raw_data())) {
        if (raw.size() != count * info->bytes)
            return fail("holds " + std::to_string(raw.size()) + " bytes, its shape needs " + std::to_string(count * info->bytes));
        out.data.resize(count);
        for (uint64_t i = 0; i < count; ++i) out.data[i] = decode_raw(raw.data() + i * info->bytes, info->e);
        return out;
    }
    auto take = [&](const auto& field, auto convert_one) {
        if (uint64_t(field.size()) != count)
            fail("holds " + std::to_string(field.size()) + " values, its shape needs " + std::to_string(count));
        out.data.resize(count);
        for (uint64_t i = 0; i < count; ++i) out.data[i] = convert_one(field[int(i)]);
    };
    switch (info->e) {
        case element::f32: take(t.float_data(), [](float v) { return double(v); }); break;
        case element::f64: take(t.double_data(), [](double v) { return v; }); break;
        case element::i64: take(t.int64_data(), [](int64_t v) { return double(v); }); break;
        case element::u32:
        case element::u64: take(t.uint64_data(), [](uint64_t v) { return double(v); }); break;
        case element::f16: take(t.int32_data(), [](int32_t v) { return half_to_double(uint16_t(v)); }); break;
        case element::bf16: take(t.int32_data(), [](int32_t v) { return bfloat_to_double(uint16_t(v)); }); break;
        default: take(t.int32_data(), [](int32_t v) { return double(v); });
    }
    return out;
}

/// ONNX asks for nodes in topological order, but ONNX Runtime sorts them itself, so files
/// that list a reader before its producer exist and run there. Sorting once here lets
/// everything after (the interpreter, the importer's walk) rely on the order. Stable: a
/// sorted graph keeps its order. Throws for a cycle, naming a node on it.
void sort_topologically(std::vector<node>& nodes) {
    std::map<std::string, size_t> producer;
    for (size_t i = 0; i < nodes.size(); ++i)
        for (const std::string& o : nodes[i].outputs)
            if (!o.empty() && !producer.emplace(o, i).second) throw std::runtime_error("value '" + o + "' is produced by two nodes");
    std::vector<std::vector<size_t>> readers(nodes.size());
    std::vector<size_t> waiting(nodes.size(), 0);
    for (size_t i = 0; i < nodes.size(); ++i) {
        std::set<size_t> from;
        for (const std::string& in : nodes[i].inputs)
            if (auto p = producer.find(in); p != producer.end()) from.insert(p->second);
        for (size_t p : from) readers[p].push_back(i);
        waiting[i] = from.size();
    }
    std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;  // the earliest listed first
    for (size_t i = 0; i < nodes.size(); ++i)
        if (!waiting[i]) ready.push(i);
    std::vector<size_t> order;
    while (!ready.empty()) {
        const size_t i = ready.top();
        ready.pop();
        order.push_back(i);
        for (size_t r : readers[i])
            if (--waiting[r] == 0) ready.push(r);
    }
    if (order.size() != nodes.size()) {
        for (size_t i = 0; i < nodes.size(); ++i)
            if (waiting[i]) throw std::runtime_error("the graph has a cycle through node '" + (nodes[i].name.empty() ? nodes[i].op : nodes[i].name) + "'");
    }
    std::vector<node> sorted;
    sorted.reserve(nodes.size());
    for (size_t i : order) sorted.push_back(std::move(nodes[i]));
    nodes = std::move(sorted);
}

}  // namespace

graph read_model(const fs::path& file) {
    const std::string bytes = read_input_file(file, onnx_max_bytes);
    onnx::ModelProto model;
    if (!model.ParseFromString(bytes)) throw input_error(source_mark{file.string(), 0, 0}, "not a valid ONNX (protobuf) file");
    graph g;
    for (const auto& op : model.opset_import())
        if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
    const fs::path base = file.parent_path();
    try {
        std::set<std::string> init_names;
        for (const auto& t : model.graph().initializer()) {
            g.initializers[t.name()] = convert(t, "initializer '" + t.name() + "'", base);
            init_names.insert(t.name());
        }
        for (const auto& in : model.graph().input()) {
            if (!init_names.count(in.name())) {
                g.inputs.push_back(in.name());
                if (in.type().has_tensor_type() && in.type().tensor_type().has_shape()) {
                    std::vector<int64_t> dims;
                    for (const auto& d : in.type().tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
                    g.input_shapes[in.name()] = dims;
                }
            }
            g.non_tensor_values = g.non_tensor_values || (in.has_type() && !in.type().has_tensor_type());
        }
        for (const auto& out : model.graph().output()) {
            g.outputs.push_back(out.name());
            g.non_tensor_values = g.non_tensor_values || (out.has_type() && !out.type().has_tensor_type());
        }
        for (const auto& n : model.graph().node()) {
            node x;
            x.name = n.name();
            x.op = n.op_type();
            x.domain = n.domain();
            x.inputs.assign(n.input().begin(), n.input().end());
            x.outputs.assign(n.output().begin(), n.output().end());
            for (const auto& a : n.attribute()) {
                attribute at;
                at.name = a.name();
                const std::string where = "node '" + (n.name().empty() ? n.op_type() : n.name()) + "' attribute '" + a.name() + "'";
                switch (a.type()) {
                    case onnx::AttributeProto::FLOAT: at.f = a.f(); break;
                    case onnx::AttributeProto::INT: at.i = a.i(); break;
                    case onnx::AttributeProto::STRING: at.s = a.s(); break;
                    case onnx::AttributeProto::TENSOR: at.t = convert(a.t(), where, base); break;
                    case onnx::AttributeProto::FLOATS: at.floats.assign(a.floats().begin(), a.floats().end()); break;
                    case onnx::AttributeProto::INTS: at.ints.assign(a.ints().begin(), a.ints().end()); break;
                    case onnx::AttributeProto::GRAPH:
                    case onnx::AttributeProto::GRAPHS: at.has_graph = true; break;
                    default: break;  // kept by name only; ops that need it will say so
                }
                x.attributes[a.name()] = std::move(at);
            }
            g.nodes.push_back(std::move(x));
        }
        sort_topologically(g.nodes);
    } catch (const input_error&) {
        throw;
    } catch (const std::exception& e) {
        throw input_error(source_mark{file.string(), 0, 0}, e.what());
    }
    return g;
}

nd_tensor read_tensor_file(const fs::path& file) {
    onnx::TensorProto t;
    if (!t.ParseFromString(read_input_file(file, onnx_max_bytes))) throw input_error(source_mark{file.string(), 0, 0}, "not a TensorProto");
    try {
        return convert(t, "tensor '" + t.name() + "'", file.parent_path());
    } catch (const std::exception& e) {
        throw input_error(source_mark{file.string(), 0, 0}, e.what());
    }
}

}  // namespace shrink::onnx_import
