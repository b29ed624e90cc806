#include "model/safetensors.hpp"

#include "model/encodings.hpp"
#include "model/graph_schema.hpp"
#include "model/safetensors_file.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

namespace shrink {

using json = nlohmann::json;

namespace {

std::map<std::string, safetensors::out_entry> entries_of(const model& m) {
    std::map<std::string, safetensors::out_entry> out;
    for (const auto& [name, t] : m.tensors) encodings::add_entries(name, t, out);
    return out;
}

json metadata_of(const model& m) {
    json tensors = json::object();
    for (const auto& [name, t] : m.tensors) tensors[name] = encodings::record(t);
    return {{"shrink.format", "1"}, {"shrink.graph", graph_to_json(m).dump()}, {"shrink.tensors", tensors.dump()}};
}

json metadata_json(const safetensors::reader& file, const std::string& key) {
    auto it = file.metadata().find(key);
    if (it == file.metadata().end())
        file.fail("no '" + key + "' in __metadata__: this is a safetensors file but not a shrink model "
                  "(importing plain weight files is not supported yet)");
    json j = json::parse(it->second, nullptr, false);
    if (j.is_discarded() || !j.is_object()) file.fail("__metadata__ '" + key + "' is not a JSON object");
    return j;
}

/// A whole shrink model from a parsed container. `keep` keeps the file's bytes alive
/// (a mapping) so that dense payloads can stay where they are; null: copy them.
model read_model(const safetensors::reader& file, const std::shared_ptr<const void>& keep) {
    auto format = file.metadata().find("shrink.format");
    if (format != file.metadata().end() && format->second != "1")
        file.fail("shrink.format " + format->second + " is newer than this shrink reads (1)");
    const json graph = metadata_json(file, "shrink.graph");
    const json tensors = metadata_json(file, "shrink.tensors");
    model m;
    try {
        graph_from_json(graph, m);
    } catch (const json::exception& e) {
        file.fail(std::string("malformed shrink.graph: ") + e.what());
    } catch (const std::invalid_argument& e) {
        file.fail(std::string("malformed shrink.graph: ") + e.what());
    }
    std::set<std::string> claimed;
    for (auto it = tensors.begin(); it != tensors.end(); ++it)
        m.tensors[it.key()] = encodings::read_tensor(it.key(), *it, file, keep, claimed);
    for (const auto& [name, e] : file.entries())
        if (!claimed.count(name)) file.fail("entry '" + name + "' belongs to no tensor in shrink.tensors");
    try {
        m.validate();
    } catch (const std::runtime_error& e) {
        file.fail(e.what());
    }
    return m;
}

/// The outline from the header alone.
model_outline read_outline(const safetensors::reader& file) {
    const json graph = metadata_json(file, "shrink.graph");
    const json tensors = metadata_json(file, "shrink.tensors");
    model m;
    uint64_t parameters = 0, memory = 0;
    try {
        graph_from_json(graph, m);
        for (auto it = tensors.begin(); it != tensors.end(); ++it) {
            uint64_t n = 1;
            for (int64_t d : it->at("shape").get<std::vector<int64_t>>()) n *= uint64_t(std::max<int64_t>(d, 0));
            parameters += n;
            memory += tensor_memory_bytes(n, it->at("bits").get<int>(), it->at("sparse").get<bool>());
            tensor t;
            t.shape = it->at("shape").get<std::vector<int64_t>>();
            m.tensors[it.key()] = std::move(t);
        }
    } catch (const json::exception& e) {
        file.fail(std::string("malformed shrink metadata: ") + e.what());
    } catch (const std::invalid_argument& e) {
        file.fail(std::string("malformed shrink metadata: ") + e.what());
    }
    model_outline o;
    try {
        o = outline_of(m);
    } catch (const std::runtime_error& e) {
        file.fail(e.what());
    }
    o.parameters = parameters;
    o.memory_bytes = memory;
    return o;
}

}  // namespace

std::string serialize_model(const model& m) {
    std::string out;
    safetensors::write(entries_of(m), metadata_of(m), [&](const void* data, size_t size) {
        out.append(static_cast<const char*>(data), size);
    });
    return out;
}

uint64_t serialized_size(const model& m) { return safetensors::file_size(entries_of(m), metadata_of(m)); }

std::string serialized_sha256(const model& m) {
    sha256_stream hash;
    safetensors::write(entries_of(m), metadata_of(m), [&](const void* data, size_t size) { hash.update(data, size); });
    return hash.hex();
}

model_outline read_model_outline(const std::filesystem::path& path) {
    // Read the 8-byte length and the header only; the data section is never touched.
    std::ifstream in(path, std::ios::binary);
    if (!in) throw input_error(source_mark{path.string(), 0, 0}, "cannot open the model file");
    std::string bytes(8, '\0');
    in.read(bytes.data(), 8);
    const uint64_t n = safetensors::header_length(bytes);
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (in.gcount() == 8 && n <= safetensors::header_max_bytes && !ec && n <= size - 8) {
        bytes.resize(8 + n);
        in.read(bytes.data() + 8, static_cast<std::streamsize>(n));
    }
    // The reader checks every data offset against the data section's true size.
    const safetensors::reader file(bytes, path.string(), ec ? 0 : size - std::min<uint64_t>(size, 8 + n));
    model_outline o = read_outline(file);
    o.file_bytes = ec ? 0 : size;
    return o;
}

model parse_model(const std::string& bytes, const std::string& file) {
    return read_model(safetensors::reader(bytes, file), nullptr);
}

model load_model(const std::filesystem::path& path) {
    const std::shared_ptr<const mapped_file> mapped = map_input_file(path, model_max_bytes);
    const safetensors::reader file(std::string_view(mapped->data, mapped->size), path.string());
    return read_model(file, mapped);
}

std::string save_model(const model& m, const std::filesystem::path& path) {
    const auto entries = entries_of(m);
    const json metadata = metadata_of(m);
    sha256_stream hash;
    write_file_atomic_streamed(path, [&](const byte_sink& sink) {
        safetensors::write(entries, metadata, [&](const void* data, size_t size) {
            hash.update(data, size);
            sink(data, size);
        });
    });
    return hash.hex();
}

}  // namespace shrink
