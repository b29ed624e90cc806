#include "model/safetensors.hpp"

#include "util/errors.hpp"
#include "util/files.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

namespace shrink {

using json = nlohmann::json;

namespace {

constexpr uint64_t header_max_bytes = 100u << 20;

size_t dtype_size(const std::string& dtype) {
    if (dtype == "F32") return 4;
    if (dtype == "I8" || dtype == "U8") return 1;
    return 0;
}

struct entry {
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;  // empty when only sizes were asked for

    uint64_t size() const {
        uint64_t n = dtype_size(dtype);
        for (int64_t d : shape) n *= uint64_t(d);
        return n;
    }
};

template <class T>
std::string as_bytes(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string pack_mask(const std::vector<uint8_t>& mask) {
    std::string out((mask.size() + 7) / 8, '\0');
    for (size_t i = 0; i < mask.size(); ++i)
        if (mask[i]) out[i / 8] = char(uint8_t(out[i / 8]) | uint8_t(1u << (i % 8)));
    return out;
}

std::string pack_int4(const std::vector<int8_t>& v) {
    std::string out((v.size() + 1) / 2, '\0');
    for (size_t i = 0; i < v.size(); ++i) {
        const uint8_t nibble = uint8_t(v[i] + 8) & 0x0f;  // [-8, 7] -> [0, 15]
        out[i / 2] = char(uint8_t(out[i / 2]) | (i % 2 ? uint8_t(nibble << 4) : nibble));
    }
    return out;
}

/// Payload values at kept positions only (all positions when dense).
template <class T>
std::vector<T> kept(const std::vector<T>& v, const std::vector<uint8_t>& mask) {
    if (mask.empty()) return v;
    std::vector<T> out;
    for (size_t i = 0; i < v.size(); ++i)
        if (mask[i]) out.push_back(v[i]);
    return out;
}

/// The stored entries of every tensor. Payloads are built only `with_data`: a size
/// follows from dtype and shape, and sizes are all serialized_size needs.
std::map<std::string, entry> to_entries(const model& m, bool with_data) {
    std::map<std::string, entry> out;
    auto add = [&](const std::string& name, std::string dtype, std::vector<int64_t> shape, auto&& payload) {
        entry e{std::move(dtype), std::move(shape), with_data ? payload() : std::string()};
        if (!out.emplace(name, std::move(e)).second)
            throw std::runtime_error("tensor name '" + name + "' collides with a stored entry of another tensor");
    };
    for (const auto& [name, t] : m.tensors) {
        const int64_t stored = static_cast<int64_t>(t.kept_count());
        if (!t.quant) {
            add(name, "F32", t.sparse() ? std::vector<int64_t>{stored} : t.shape, [&] { return as_bytes(kept(t.values, t.mask)); });
        } else {
            if (t.quant->bits == 8) add(name, "I8", {stored}, [&] { return as_bytes(kept(t.q, t.mask)); });
            else add(name, "U8", {(stored + 1) / 2}, [&] { return pack_int4(kept(t.q, t.mask)); });
            add(name + ".scales", "F32", {int64_t(t.scales.size())}, [&] { return as_bytes(t.scales); });
            if (!t.zero_points.empty())
                add(name + ".zeros", "I8", {int64_t(t.zero_points.size())}, [&] { return as_bytes(t.zero_points); });
        }
        if (t.sparse()) add(name + ".mask", "U8", {int64_t((t.mask.size() + 7) / 8)}, [&] { return pack_mask(t.mask); });
    }
    return out;
}

json graph_json(const model& m) {
    json layers = json::array();
    for (const layer& l : m.layers) {
        json j{{"name", l.name}, {"op", l.op}, {"input", l.input}, {"output", l.output}};
        if (!l.more_inputs.empty()) j["more_inputs"] = l.more_inputs;
        if (l.op == "concat") j["axis"] = l.axis;
        if (l.op == "reshape") j["shape"] = l.shape;
        if (!l.weight.empty()) j["weight"] = l.weight;
        if (!l.bias.empty()) j["bias"] = l.bias;
        if (l.input_quantization) j["input_quant"] = {{"scale", l.input_quantization->scale}, {"zero_point", l.input_quantization->zero_point}};
        if (!l.factor_of.empty()) {
            j["factor_of"] = l.factor_of;
            j["rank"] = l.rank;
        }
        if (l.op == "conv" || l.op == "max_pool" || l.op == "avg_pool") {
            const window& w = l.win;
            j["window"] = {{"kernel", w.kernel}, {"strides", w.strides}, {"pads", w.pads}, {"dilations", w.dilations},
                           {"group", w.group}, {"count_include_pad", w.count_include_pad}};
        }
        if (l.op == "leaky_relu" || l.op == "clip") {
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

json tensors_json(const model& m) {
    json out = json::object();
    for (const auto& [name, t] : m.tensors) {
        json j{{"shape", t.shape}, {"sparse", t.sparse()}, {"kept", t.kept_count()}};
        if (t.quant) {
            j["bits"] = t.quant->bits;
            j["symmetric"] = t.quant->symmetric;
            j["group_size"] = t.quant->group_size;
        } else {
            j["bits"] = 32;
        }
        out[name] = std::move(j);
    }
    return out;
}

std::string header_text(const model& m, const std::map<std::string, entry>& entries) {
    json header = json::object();
    uint64_t offset = 0;
    for (const auto& [name, e] : entries) {
        header[name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.size()}}};
        offset += e.size();
    }
    header["__metadata__"] = {{"shrink.format", "1"}, {"shrink.graph", graph_json(m).dump()},
                              {"shrink.tensors", tensors_json(m).dump()}};
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
}

}  // namespace

std::string serialize_model(const model& m) {
    const auto entries = to_entries(m, true);
    const std::string header = header_text(m, entries);
    std::string out(8, '\0');
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
    out += header;
    for (const auto& [name, e] : entries) out += e.bytes;
    return out;
}

uint64_t serialized_size(const model& m) {
    const auto entries = to_entries(m, false);
    uint64_t n = 8 + header_text(m, entries).size();
    for (const auto& [name, e] : entries) n += e.size();
    return n;
}

namespace {

class model_reader {
  public:
    model_reader(const std::string& bytes, const std::string& file) : bytes_(bytes), file_(file) {}

    model read() {
        read_header();
        return build_model();
    }

  private:
    [[noreturn]] void fail(const std::string& message) const { throw input_error(source_mark{file_, 0, 0}, message); }

    void read_header() {
        if (bytes_.size() < 8) fail("not a safetensors file: " + std::to_string(bytes_.size()) + " bytes, shorter than the 8-byte header length");
        uint64_t n = 0;
        for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes_[size_t(i)])) << (8 * i);
        if (n > header_max_bytes || n > bytes_.size() - 8)
            fail("header length " + std::to_string(n) + " exceeds the file (" + std::to_string(bytes_.size()) + " bytes)");
        const json header = json::parse(bytes_.begin() + 8, bytes_.begin() + 8 + static_cast<std::ptrdiff_t>(n), nullptr, false);
        if (header.is_discarded() || !header.is_object()) fail("header is not a JSON object");
        data_begin_ = 8 + n;
        const uint64_t data_size = data_size_override_ ? *data_size_override_ : bytes_.size() - data_begin_;

        std::vector<std::pair<uint64_t, uint64_t>> spans;
        for (auto it = header.begin(); it != header.end(); ++it) {
            if (it.key() == "__metadata__") {
                if (!it->is_object()) fail("__metadata__ must be an object of strings");
                for (auto m = it->begin(); m != it->end(); ++m) {
                    if (!m->is_string()) fail("__metadata__ value '" + m.key() + "' is not a string");
                    metadata_[m.key()] = m->get<std::string>();
                }
                continue;
            }
            const std::string where = "tensor '" + it.key() + "': ";
            const json& t = *it;
            if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") || !t.contains("data_offsets"))
                fail(where + "needs dtype, shape and data_offsets");
            if (!t["dtype"].is_string()) fail(where + "dtype must be a string");
            entry_view e;
            e.dtype = t["dtype"].get<std::string>();
            const size_t esize = dtype_size(e.dtype);
            if (esize == 0) fail(where + "dtype '" + e.dtype + "' is not one shrink reads (F32, I8, U8)");
            if (!t["shape"].is_array() || t["shape"].size() > 8) fail(where + "shape must be a list of at most 8 sizes");
            uint64_t count = 1;
            for (const json& d : t["shape"]) {
                if (!d.is_number_unsigned()) fail(where + "shape entries must be non-negative integers");
                const uint64_t v = d.get<uint64_t>();
                if (v != 0 && count > std::numeric_limits<uint64_t>::max() / 8 / v) fail(where + "shape is too large");
                count *= v;
                e.shape.push_back(static_cast<int64_t>(v));
            }
            const json& off = t["data_offsets"];
            if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
                fail(where + "data_offsets must be [begin, end]");
            const uint64_t b = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
            if (b > end || end > data_size)
                fail(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(end) + "] are outside the " +
                     std::to_string(data_size) + "-byte data section");
            if (end - b != count * esize)
                fail(where + "holds " + std::to_string(end - b) + " bytes but its shape and dtype need " +
                     std::to_string(count * esize));
            e.offset = data_begin_ + b;
            e.size = end - b;
            spans.emplace_back(b, end);
            entries_[it.key()] = e;
        }
        std::sort(spans.begin(), spans.end());
        uint64_t expect = 0;
        for (const auto& [b, e] : spans) {
            if (b < expect) fail("tensor data regions overlap at byte " + std::to_string(b));
            if (b > expect) fail("tensor data regions leave a gap at byte " + std::to_string(expect));
            expect = e;
        }
        if (expect != data_size) fail("the data section has " + std::to_string(data_size - expect) + " bytes no tensor claims");
    }

    struct entry_view {
        std::string dtype;
        std::vector<int64_t> shape;
        uint64_t offset = 0;
        uint64_t size = 0;
    };

    const entry_view& take(const std::string& name, const std::string& dtype, uint64_t expected_bytes) {
        auto it = entries_.find(name);
        if (it == entries_.end()) fail("entry '" + name + "' is missing");
        if (it->second.dtype != dtype) fail("entry '" + name + "' is " + it->second.dtype + ", expected " + dtype);
        if (it->second.size != expected_bytes)
            fail("entry '" + name + "' has " + std::to_string(it->second.size) + " bytes, expected " + std::to_string(expected_bytes));
        claimed_.insert(name);
        return it->second;
    }

    template <class T>
    std::vector<T> copy(const entry_view& e) const {
        std::vector<T> out(e.size / sizeof(T));
        std::memcpy(out.data(), bytes_.data() + e.offset, e.size);
        return out;
    }

    template <class T>
    static std::vector<T> scatter(const std::vector<T>& kept_values, const std::vector<uint8_t>& mask) {
        std::vector<T> out(mask.size(), T{});
        size_t k = 0;
        for (size_t i = 0; i < mask.size(); ++i)
            if (mask[i]) out[i] = kept_values[k++];
        return out;
    }

    json metadata_json(const std::string& key) const {
        auto it = metadata_.find(key);
        if (it == metadata_.end())
            fail("no '" + key + "' in __metadata__: this is a safetensors file but not a shrink model "
                 "(importing plain weight files is not supported yet)");
        json j = json::parse(it->second, nullptr, false);
        if (j.is_discarded() || !j.is_object()) fail("__metadata__ '" + key + "' is not a JSON object");
        return j;
    }

    tensor read_tensor(const std::string& name, const json& d) {
        const std::string where = "tensor '" + name + "': ";
        tensor t;
        try {
            t.shape = d.at("shape").get<std::vector<int64_t>>();
            for (int64_t s : t.shape)
                if (s < 0) fail(where + "negative size in shape");
            if (t.shape.size() > 8) fail(where + "more than 8 dimensions");
            const uint64_t n = t.element_count();
            const bool sparse = d.at("sparse").get<bool>();
            const uint64_t kept_count = d.at("kept").get<uint64_t>();
            const int bits = d.at("bits").get<int>();
            if (kept_count > n) fail(where + "keeps more elements than it has");
            if (sparse) {
                auto bits_stored = copy<uint8_t>(take(name + ".mask", "U8", (n + 7) / 8));
                t.mask.resize(n);
                for (uint64_t i = 0; i < n; ++i) t.mask[i] = (bits_stored[i / 8] >> (i % 8)) & 1;
                if (t.kept_count() != kept_count) fail(where + "mask keeps " + std::to_string(t.kept_count()) + " elements, header says " + std::to_string(kept_count));
            } else if (kept_count != n) {
                fail(where + "dense tensor must keep all elements");
            }
            const uint64_t stored = sparse ? kept_count : n;
            if (bits == 32) {
                auto v = copy<float>(take(name, "F32", stored * 4));
                for (size_t i = 0; i < v.size(); ++i)
                    if (!std::isfinite(v[i])) fail(where + "value " + std::to_string(i) + " is not finite (NaN or infinity)");
                t.values = sparse ? scatter(v, t.mask) : v;
                return t;
            }
            if (bits != 8 && bits != 4) fail(where + "bits must be 32, 8 or 4");
            quant_spec spec{bits, d.at("symmetric").get<bool>(), d.at("group_size").get<uint64_t>()};
            std::vector<int8_t> q;
            if (bits == 8) {
                q = copy<int8_t>(take(name, "I8", stored));
            } else {
                auto packed = copy<uint8_t>(take(name, "U8", (stored + 1) / 2));
                q.resize(stored);
                for (uint64_t i = 0; i < stored; ++i) q[i] = int8_t(int((packed[i / 2] >> (4 * (i % 2))) & 0x0f) - 8);
            }
            if (spec.group_size != 0 && t.shape.size() < 2) fail(where + "grouped scales need a tensor of 2 or more dimensions");
            const uint64_t ns = tensor::scale_count(t.shape, spec);
            auto scales = copy<float>(take(name + ".scales", "F32", ns * 4));
            std::vector<int8_t> zeros;
            if (!spec.symmetric) zeros = copy<int8_t>(take(name + ".zeros", "I8", ns));
            if (sparse) {
                // Pruned positions are not stored: they hold their group's zero point.
                q = scatter(q, t.mask);
                tensor layout;
                layout.shape = t.shape;
                layout.quant = spec;
                for (uint64_t i = 0; i < n; ++i)
                    if (!t.mask[i]) q[i] = zeros.empty() ? 0 : zeros[layout.scale_index(i)];
            }
            tensor base;
            base.shape = t.shape;
            base.mask = t.mask;
            try {
                return make_quantized(base, spec, std::move(q), std::move(scales), std::move(zeros));
            } catch (const std::runtime_error& e) {
                fail(where + e.what());
            }
        } catch (const json::exception& e) {
            fail(where + "malformed encoding record: " + e.what());
        }
    }

  public:
    /// The header and graph only: what planning needs, without the weights. `data_size`
    /// is the size of the data section in the file, which the caller did not read.
    model_outline outline_with_data_size(uint64_t data_size) {
        data_size_override_ = data_size;
        return outline();
    }

    model_outline outline() {
        read_header();
        const json graph = metadata_json("shrink.graph");
        const json tensors = metadata_json("shrink.tensors");
        model m;
        model_outline o;
        try {
            read_graph(graph, m);
            for (auto it = tensors.begin(); it != tensors.end(); ++it) {
                uint64_t n = 1;
                for (int64_t d : it->at("shape").get<std::vector<int64_t>>()) n *= uint64_t(std::max<int64_t>(d, 0));
                const int bits = it->at("bits").get<int>();
                const bool sparse = it->at("sparse").get<bool>();
                o.parameters += n;
                o.memory_bytes += n * (bits == 32 ? 4 : 1) + (sparse ? n : 0);
                tensor t;
                t.shape = it->at("shape").get<std::vector<int64_t>>();
                m.tensors[it.key()] = std::move(t);
            }
        } catch (const json::exception& e) {
            fail(std::string("malformed shrink metadata: ") + e.what());
        }
        model_outline shape;
        try {
            shape = outline_of(m);
        } catch (const std::runtime_error& e) {
            fail(e.what());
        }
        shape.parameters = o.parameters;
        shape.memory_bytes = o.memory_bytes;
        return shape;
    }

  private:
    void read_graph(const json& graph, model& m) const {
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
            if (j.contains("input_quant"))
                l.input_quantization = input_quant{j["input_quant"].at("scale").get<float>(),
                                                   j["input_quant"].at("zero_point").get<int32_t>()};
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
            if (j.contains("alpha")) l.alpha = j.at("alpha").get<float>();
            if (j.contains("beta")) l.beta = j.at("beta").get<float>();
            m.layers.push_back(std::move(l));
        }
    }

  public:
    model build_model() {
        auto format = metadata_.find("shrink.format");
        if (format != metadata_.end() && format->second != "1")
            fail("shrink.format " + format->second + " is newer than this shrink reads (1)");
        const json graph = metadata_json("shrink.graph");
        const json tensors = metadata_json("shrink.tensors");
        model m;
        try {
            read_graph(graph, m);
        } catch (const json::exception& e) {
            fail(std::string("malformed shrink.graph: ") + e.what());
        }
        for (auto it = tensors.begin(); it != tensors.end(); ++it) m.tensors[it.key()] = read_tensor(it.key(), *it);
        for (const auto& [name, e] : entries_)
            if (!claimed_.count(name)) fail("entry '" + name + "' belongs to no tensor in shrink.tensors");
        try {
            m.validate();
        } catch (const std::runtime_error& e) {
            fail(e.what());
        }
        return m;
    }

    const std::string& bytes_;
    std::string file_;
    uint64_t data_begin_ = 0;
    std::map<std::string, entry_view> entries_;
    std::set<std::string> claimed_;
    std::map<std::string, std::string> metadata_;
    std::optional<uint64_t> data_size_override_;
};

}  // namespace

model_outline outline_of(const model& m) {
    model_outline o;
    o.input_features = m.input_features;
    for (const auto& [name, t] : m.tensors) {
        o.parameters += t.element_count();
        o.memory_bytes += t.element_count() * (t.quant ? 1 : 4) + (t.sparse() ? t.element_count() : 0);
    }
    const auto shapes = m.activation_shapes();
    auto size_of = [&](const std::string& activation) {
        int64_t n = 1;
        for (int64_t d : shapes.at(activation)) n *= d;
        return n;
    };
    for (const auto& [name, shape] : shapes) o.activation_floats += size_of(name);
    std::map<std::string, std::set<int>> upstream{{m.input, {}}};  // activation -> layers it depends on
    for (const layer& l : m.layers) {
        model_outline::layer_info info{l.name, l.op, 0, 0, size_of(l.input), {}};
        if (has_matrix(l.op)) {
            auto w = m.tensors.find(l.weight);
            const size_t rank = l.op == "conv" ? 4 : 2;
            if (w == m.tensors.end() || w->second.shape.size() != rank)
                throw std::runtime_error("layer '" + l.name + "': weight '" + l.weight + "' is not a " + std::to_string(rank) + "-D tensor");
            info.out = int64_t(w->second.rows());
            info.in = int64_t(w->second.cols());
        }
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

model_outline read_model_outline(const std::filesystem::path& path) {
    // Read the 8-byte length and the header only; the data section is never touched.
    std::ifstream in(path, std::ios::binary);
    if (!in) throw input_error(source_mark{path.string(), 0, 0}, "cannot open the model file");
    std::string bytes(8, '\0');
    in.read(bytes.data(), 8);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (in.gcount() == 8 && n <= header_max_bytes && !ec && n <= size - 8) {
        bytes.resize(8 + n);
        in.read(bytes.data() + 8, static_cast<std::streamsize>(n));
    }
    // The reader checks every data offset against the data section's true size.
    model_reader reader(bytes, path.string());
    model_outline o = reader.outline_with_data_size(ec ? 0 : size - std::min<uint64_t>(size, 8 + n));
    o.file_bytes = ec ? 0 : size;
    return o;
}

model parse_model(const std::string& bytes, const std::string& file) {
    return model_reader(bytes, file).read();
}

model load_model(const std::filesystem::path& path) {
    std::string bytes;
    try {
        bytes = read_file_bounded(path, model_max_bytes);
    } catch (const std::runtime_error& e) {
        throw input_error(e.what());
    }
    return parse_model(bytes, path.string());
}

void save_model(const model& m, const std::filesystem::path& path) {
    write_file_atomic(path, serialize_model(m));
}

}  // namespace shrink
