#include "model/encodings.hpp"

#include <cmath>
#include <cstring>
#include <optional>

namespace shrink::encodings {

using json = nlohmann::json;

namespace {

template <class T>
void emit(const byte_sink& sink, const T* data, size_t count) {
    sink(data, count * sizeof(T));
}

/// Bytes handed to the sink in pieces of this size: a payload that has to be transformed
/// (kept values of a sparse tensor, packed codes, a packed mask) never exists whole twice.
constexpr size_t piece_bytes = size_t(1) << 20;

/// Collects bytes and passes them on a piece at a time.
class piece_writer {
  public:
    explicit piece_writer(const byte_sink& sink) : sink_(sink) { buffer_.reserve(piece_bytes); }
    void put(uint8_t b) {
        buffer_.push_back(b);
        if (buffer_.size() == piece_bytes) flush();
    }
    template <class T>
    void put_value(const T& v) {
        const auto* b = reinterpret_cast<const uint8_t*>(&v);
        for (size_t i = 0; i < sizeof(T); ++i) put(b[i]);
    }
    void flush() {
        if (!buffer_.empty()) sink_(buffer_.data(), buffer_.size());
        buffer_.clear();
    }

  private:
    const byte_sink& sink_;
    std::vector<uint8_t> buffer_;
};

/// Values at kept positions only; all of them, as they lie, when dense.
template <class T>
void write_kept(const byte_sink& sink, const shared_array<T>& v, const shared_array<uint8_t>& mask) {
    if (mask.empty()) return emit(sink, v.data(), v.size());
    piece_writer out(sink);
    for (size_t i = 0; i < v.size(); ++i)
        if (mask[i]) out.put_value(v[i]);
    out.flush();
}

/// int4 codes of kept positions, two per byte, low nibble first, as [-8, 7] -> [0, 15].
void write_int4(const byte_sink& sink, const shared_array<int8_t>& q, const shared_array<uint8_t>& mask) {
    piece_writer out(sink);
    bool low = true;
    uint8_t byte = 0;
    for (size_t i = 0; i < q.size(); ++i) {
        if (!mask.empty() && !mask[i]) continue;
        const uint8_t nibble = uint8_t(q[i] + 8) & 0x0f;
        if (low) {
            byte = nibble;
        } else {
            out.put(uint8_t(byte | uint8_t(nibble << 4)));
        }
        low = !low;
    }
    if (!low) out.put(byte);
    out.flush();
}

/// Bit i = element i kept, LSB first.
void write_mask(const byte_sink& sink, const shared_array<uint8_t>& mask) {
    piece_writer out(sink);
    for (size_t i = 0; i < mask.size(); i += 8) {
        uint8_t byte = 0;
        for (size_t b = 0; b < 8 && i + b < mask.size(); ++b)
            if (mask[i + b]) byte = uint8_t(byte | uint8_t(1u << b));
        out.put(byte);
    }
    out.flush();
}

template <class T>
std::vector<T> scatter(const std::vector<T>& kept_values, const shared_array<uint8_t>& mask) {
    std::vector<T> out(mask.size(), T{});
    size_t k = 0;
    for (size_t i = 0; i < mask.size(); ++i)
        if (mask[i]) out[i] = kept_values[k++];
    return out;
}

const char* container_dtype(dtype t) { return t == dtype::f32 ? "F32" : t == dtype::f16 ? "F16" : "BF16"; }

}  // namespace

void add_entries(const std::string& name, const tensor& t, std::map<std::string, safetensors::out_entry>& out) {
    auto add = [&](const std::string& entry, std::string dt, std::vector<int64_t> shape, std::function<void(const byte_sink&)> write) {
        uint64_t size = safetensors::dtype_size(dt);
        for (int64_t d : shape) size *= uint64_t(d);
        if (!out.emplace(entry, safetensors::out_entry{std::move(dt), std::move(shape), size, std::move(write)}).second)
            throw std::runtime_error("tensor name '" + entry + "' collides with a stored entry of another tensor");
    };
    const int64_t stored = static_cast<int64_t>(t.kept_count());
    if (!t.quant) {
        if (t.sparse()) {
            add(name, "F32", {stored}, [&t](const byte_sink& s) { write_kept(s, t.values, t.mask); });
        } else if (t.type == dtype::f32) {
            add(name, "F32", t.shape, [&t](const byte_sink& s) { emit(s, t.values.data(), t.values.size()); });
        } else {
            add(name, container_dtype(t.type), t.shape, [&t](const byte_sink& s) { emit(s, t.half.data(), t.half.size()); });
        }
    } else {
        if (t.quant->bits == 8)
            add(name, "I8", {stored}, [&t](const byte_sink& s) { write_kept(s, t.q, t.mask); });
        else
            add(name, "U8", {(stored + 1) / 2}, [&t](const byte_sink& s) { write_int4(s, t.q, t.mask); });
        if (t.quant->double_quant) {
            const scale_codes& c = t.scale_q;
            add(name + ".scale_codes", "I8", {int64_t(c.codes.size())}, [&c](const byte_sink& s) { emit(s, c.codes.data(), c.codes.size()); });
            add(name + ".scale_steps", "F32", {int64_t(c.steps.size())}, [&c](const byte_sink& s) { emit(s, c.steps.data(), c.steps.size()); });
            add(name + ".scale_offset", "F32", {1}, [&c](const byte_sink& s) { emit(s, &c.offset, 1); });
        } else if (!t.scales.empty()) {
            add(name + ".scales", "F32", {int64_t(t.scales.size())}, [&t](const byte_sink& s) { emit(s, t.scales.data(), t.scales.size()); });
        }
        if (t.quant->table == "kmeans")
            add(name + ".table", "F32", {int64_t(t.table.size())}, [&t](const byte_sink& s) { emit(s, t.table.data(), t.table.size()); });
        if (!t.zero_points.empty())
            add(name + ".zeros", "I8", {int64_t(t.zero_points.size())},
                [&t](const byte_sink& s) { emit(s, t.zero_points.data(), t.zero_points.size()); });
    }
    if (t.sparse())
        add(name + ".mask", "U8", {int64_t((t.mask.size() + 7) / 8)}, [&t](const byte_sink& s) { write_mask(s, t.mask); });
}

json record(const tensor& t) {
    json j{{"shape", t.shape}, {"sparse", t.sparse()}, {"kept", t.kept_count()}};
    if (t.quant) {
        j["bits"] = t.quant->bits;
        j["symmetric"] = t.quant->symmetric;
        j["group_size"] = t.quant->group_size;
        if (!t.quant->table.empty()) {
            j["table"] = t.quant->table;
            if (t.quant->table == "kmeans") j["books"] = t.quant->books;
            j["double_quant"] = t.quant->double_quant;
        }
    } else if (t.type == dtype::f32) {
        j["bits"] = 32;
    } else {
        j["bits"] = 16;
        j["dtype"] = dtype_name(t.type);
    }
    return j;
}

namespace {

class tensor_reader {
  public:
    tensor_reader(const std::string& name, const safetensors::reader& file, const std::shared_ptr<const void>& keep,
                  std::set<std::string>& claimed)
        : name_(name), where_("tensor '" + name + "': "), file_(file), keep_(keep), claimed_(claimed) {}

    [[noreturn]] void fail(const std::string& m) const { file_.fail(where_ + m); }

    const safetensors::entry& take(const std::string& entry, const std::string& dt, uint64_t expected_bytes) {
        auto it = file_.entries().find(entry);
        if (it == file_.entries().end()) file_.fail("entry '" + entry + "' is missing");
        if (it->second.dtype != dt) file_.fail("entry '" + entry + "' is " + it->second.dtype + ", expected " + dt);
        if (it->second.size != expected_bytes)
            file_.fail("entry '" + entry + "' has " + std::to_string(it->second.size) + " bytes, expected " +
                       std::to_string(expected_bytes));
        claimed_.insert(entry);
        return it->second;
    }

    template <class T>
    std::vector<T> copy(const safetensors::entry& e) const {
        std::vector<T> out(e.size / sizeof(T));
        if (e.size) std::memcpy(out.data(), e.data, e.size);
        // From a mapped file: the copy is what stays, so the file's pages need not.
        if (keep_) release_mapped_pages(e.data, e.size);
        return out;
    }

    /// In place when the bytes stay alive and are aligned for T; else a copy.
    template <class T>
    shared_array<T> in_place(const safetensors::entry& e) const {
        if (keep_ && reinterpret_cast<uintptr_t>(e.data) % alignof(T) == 0)
            return shared_array<T>::view(keep_, reinterpret_cast<const T*>(e.data), e.size / sizeof(T));
        return copy<T>(e);
    }

    tensor read(const json& d) {
        tensor t;
        t.shape = d.at("shape").get<std::vector<int64_t>>();
        for (int64_t s : t.shape)
            if (s < 0) fail("negative size in shape");
        if (t.shape.size() > 8) fail("more than 8 dimensions");
        const uint64_t n = t.element_count();
        const bool sparse = d.at("sparse").get<bool>();
        const uint64_t kept_count = d.at("kept").get<uint64_t>();
        const int bits = d.at("bits").get<int>();
        if (kept_count > n) fail("keeps more elements than it has");
        if (sparse) {
            auto bits_stored = copy<uint8_t>(take(name_ + ".mask", "U8", (n + 7) / 8));
            std::vector<uint8_t> mask(n);
            for (uint64_t i = 0; i < n; ++i) mask[i] = (bits_stored[i / 8] >> (i % 8)) & 1;
            t.mask = std::move(mask);
            if (t.kept_count() != kept_count)
                fail("mask keeps " + std::to_string(t.kept_count()) + " elements, header says " + std::to_string(kept_count));
        } else if (kept_count != n) {
            fail("dense tensor must keep all elements");
        }
        const uint64_t stored = sparse ? kept_count : n;
        if (bits == 32) {
            const safetensors::entry& e = take(name_, "F32", stored * 4);
            // Dense: the payload in place. Sparse: the kept values, spread over the mask.
            t.values = sparse ? shared_array<float>(scatter(copy<float>(e), t.mask)) : in_place<float>(e);
            const float* v = t.values.data();
            for (size_t i = 0, k = 0; i < t.values.size(); ++i) {
                if (sparse && !t.mask[i]) continue;
                if (!std::isfinite(v[i])) fail("value " + std::to_string(k) + " is not finite (NaN or infinity)");
                ++k;
            }
            return t;
        }
        if (bits == 16) {
            const std::string type = d.at("dtype").get<std::string>();
            if (type != "f16" && type != "bf16") fail("a 16-bit tensor's dtype must be f16 or bf16, not '" + type + "'");
            if (sparse) fail("a sparse tensor holds f32 values");
            t.type = type == "f16" ? dtype::f16 : dtype::bf16;
            t.half = in_place<uint16_t>(take(name_, t.type == dtype::f16 ? "F16" : "BF16", n * 2));
            // Exponent all ones: infinity or NaN, in either format.
            const uint16_t exponent = t.type == dtype::f16 ? 0x7c00 : 0x7f80;
            for (size_t i = 0; i < t.half.size(); ++i)
                if ((t.half[i] & exponent) == exponent) fail("value " + std::to_string(i) + " is not finite (NaN or infinity)");
            return t;
        }
        if (bits != 8 && bits != 4) fail("bits must be 32, 16, 8 or 4");
        quant_spec spec;
        spec.bits = bits;
        spec.symmetric = d.at("symmetric").get<bool>();
        spec.group_size = d.at("group_size").get<uint64_t>();
        if (d.contains("table")) {
            spec.table = d.at("table").get<std::string>();
            if (spec.table != "nf4" && spec.table != "kmeans") fail("unknown table encoding '" + spec.table + "'");
            spec.books = spec.table == "kmeans" ? d.at("books").get<uint64_t>() : 0;
            spec.double_quant = d.at("double_quant").get<bool>();
        }
        std::vector<int8_t> q;
        if (bits == 8) {
            q = copy<int8_t>(take(name_, "I8", stored));
        } else {
            auto packed = copy<uint8_t>(take(name_, "U8", (stored + 1) / 2));
            q.resize(stored);
            for (uint64_t i = 0; i < stored; ++i) q[i] = int8_t(int((packed[i / 2] >> (4 * (i % 2))) & 0x0f) - 8);
        }
        if (spec.group_size != 0 && t.shape.size() < 2) fail("grouped scales need a tensor of 2 or more dimensions");
        if (!spec.table.empty()) return read_table_codes(t, spec, std::move(q), sparse);
        const uint64_t ns = tensor::scale_count(t.shape, spec);
        auto scales = copy<float>(take(name_ + ".scales", "F32", ns * 4));
        std::vector<int8_t> zeros;
        if (!spec.symmetric) zeros = copy<int8_t>(take(name_ + ".zeros", "I8", ns));
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
            fail(e.what());
        }
    }

  private:
    /// The rest of a table encoding: its scales (or their codes), its table, its mask.
    tensor read_table_codes(const tensor& t, const quant_spec& spec, std::vector<int8_t> q, bool sparse) {
        const uint64_t n = t.element_count();
        if (spec.table == "kmeans" && (spec.books == 0 || spec.books > n)) fail("a k-means tensor needs 1 to rows tables");
        const uint64_t ns = tensor::scale_count(t.shape, spec);
        std::vector<float> scales, table;
        std::optional<scale_codes> stored;
        if (spec.double_quant) {
            stored.emplace();
            stored->codes = copy<int8_t>(take(name_ + ".scale_codes", "I8", ns));
            stored->steps = copy<float>(take(name_ + ".scale_steps", "F32", (ns + scale_codes::block - 1) / scale_codes::block * 4));
            stored->offset = copy<float>(take(name_ + ".scale_offset", "F32", 4))[0];
        } else if (ns) {
            scales = copy<float>(take(name_ + ".scales", "F32", ns * 4));
        }
        if (spec.table == "kmeans") table = copy<float>(take(name_ + ".table", "F32", spec.books * (uint64_t(1) << spec.bits) * 4));
        if (sparse) {
            q = scatter(q, t.mask);
            for (uint64_t i = 0; i < n; ++i)
                if (!t.mask[i]) q[i] = int8_t(-(1 << (spec.bits - 1)));
        }
        tensor base;
        base.shape = t.shape;
        base.mask = t.mask;
        try {
            return make_table_quantized(base, spec, std::move(q), std::move(scales), std::move(table), stored ? &*stored : nullptr);
        } catch (const std::runtime_error& e) {
            fail(e.what());
        }
    }

    std::string name_;
    std::string where_;
    const safetensors::reader& file_;
    const std::shared_ptr<const void>& keep_;
    std::set<std::string>& claimed_;
};

}  // namespace

tensor read_tensor(const std::string& name, const json& record, const safetensors::reader& file,
                   const std::shared_ptr<const void>& keep, std::set<std::string>& claimed) {
    tensor_reader r(name, file, keep, claimed);
    try {
        return r.read(record);
    } catch (const json::exception& e) {
        r.fail(std::string("malformed encoding record: ") + e.what());
    }
}

}  // namespace shrink::encodings
