#include "model/safetensors_file.hpp"

#include "util/errors.hpp"

#include <algorithm>
#include <limits>

namespace shrink::safetensors {

using json = nlohmann::json;

size_t dtype_size(std::string_view dtype) {
    if (dtype == "F32") return 4;
    if (dtype == "F16" || dtype == "BF16") return 2;
    if (dtype == "I8" || dtype == "U8") return 1;
    return 0;
}

uint64_t header_length(std::string_view first_bytes) {
    if (first_bytes.size() < 8) return 0;
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(first_bytes[size_t(i)])) << (8 * i);
    return n;
}

void reader::fail(const std::string& message) const { throw input_error(source_mark{file_, 0, 0}, message); }

reader::reader(std::string_view bytes, std::string file, std::optional<uint64_t> data_size_given) : file_(std::move(file)) {
    if (bytes.size() < 8) fail("not a safetensors file: " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
    const uint64_t n = header_length(bytes);
    if (n > header_max_bytes || n > bytes.size() - 8)
        fail("header length " + std::to_string(n) + " exceeds the file (" + std::to_string(bytes.size()) + " bytes)");
    const json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), nullptr, false);
    if (header.is_discarded() || !header.is_object()) fail("header is not a JSON object");
    const uint64_t data_begin = 8 + n;
    const bool have_data = !data_size_given;
    const uint64_t data_size = have_data ? bytes.size() - data_begin : *data_size_given;

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
        entry e;
        e.dtype = t["dtype"].get<std::string>();
        const size_t esize = dtype_size(e.dtype);
        if (esize == 0) fail(where + "dtype '" + e.dtype + "' is not one shrink reads (F32, F16, BF16, I8, U8)");
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
            fail(where + "holds " + std::to_string(end - b) + " bytes but its shape and dtype need " + std::to_string(count * esize));
        e.data = have_data ? bytes.data() + data_begin + b : nullptr;
        e.size = end - b;
        spans.emplace_back(b, end);
        entries_[it.key()] = std::move(e);
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

std::string header_text(const std::map<std::string, out_entry>& entries, const json& metadata) {
    json header = json::object();
    uint64_t offset = 0;
    for (const auto& [name, e] : entries) {
        header[name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.size}}};
        offset += e.size;
    }
    header["__metadata__"] = metadata;
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
}

void write(const std::map<std::string, out_entry>& entries, const json& metadata, const byte_sink& sink) {
    const std::string header = header_text(entries, metadata);
    char length[8];
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) length[i] = char((n >> (8 * i)) & 0xff);
    sink(length, 8);
    sink(header.data(), header.size());
    for (const auto& [name, e] : entries) {
        uint64_t written = 0;
        e.write([&](const void* data, size_t size) {
            written += size;
            sink(data, size);
        });
        if (written != e.size)
            throw std::logic_error("entry '" + name + "' wrote " + std::to_string(written) + " bytes, its record says " +
                                   std::to_string(e.size));
    }
}

uint64_t file_size(const std::map<std::string, out_entry>& entries, const json& metadata) {
    uint64_t n = 8 + header_text(entries, metadata).size();
    for (const auto& [name, e] : entries) n += e.size;
    return n;
}

}  // namespace shrink::safetensors
