#include "hf/folder.hpp"
#include "hf/shard_index.hpp"
#include "model/dtype.hpp"
#include "model/safetensors_file.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unistd.h>

namespace shrink::hf {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t max_shard_bytes = uint64_t(1) << 40;

std::string dims(const std::vector<int64_t>& shape) { return dims_text(shape); }

/// The tensor of an F32, F16 or BF16 entry, in place where the file's bytes allow.
tensor tensor_of(const safetensors::entry& e, const std::shared_ptr<const mapped_file>& keep, const std::string& where) {
    tensor t;
    t.shape = e.shape;
    const uint64_t n = t.element_count();
    if (e.dtype == "F32") {
        if (reinterpret_cast<uintptr_t>(e.data) % alignof(float) == 0) {
            t.values = shared_array<float>::view(keep, reinterpret_cast<const float*>(e.data), n);
        } else {
            std::vector<float> v(n);
            std::memcpy(v.data(), e.data, n * sizeof(float));
            t.values = std::move(v);
        }
        for (uint64_t i = 0; i < n; ++i)
            if (!std::isfinite(t.values[i])) throw input_error(where + ": value " + std::to_string(i) + " is not finite (NaN or infinity)");
        return t;
    }
    if (e.dtype != "F16" && e.dtype != "BF16") throw input_error(where + ": dtype " + e.dtype + " is not one shrink imports (F32, F16, BF16)");
    t.type = e.dtype == "F16" ? dtype::f16 : dtype::bf16;
    if (reinterpret_cast<uintptr_t>(e.data) % alignof(uint16_t) == 0) {
        t.half = shared_array<uint16_t>::view(keep, reinterpret_cast<const uint16_t*>(e.data), n);
    } else {
        std::vector<uint16_t> v(n);
        std::memcpy(v.data(), e.data, n * 2);
        t.half = std::move(v);
    }
    for (uint64_t i = 0; i < n; ++i) {
        const float f = t.type == dtype::f16 ? f16_to_f32(t.half[i]) : bf16_to_f32(t.half[i]);
        if (!std::isfinite(f)) throw input_error(where + ": value " + std::to_string(i) + " is not finite (NaN or infinity)");
    }
    return t;
}

bool ignorable(const std::string& name, const decoder_shape& s) {
    // Buffers some checkpoints carry that the forward pass recomputes, and a tied model's
    // head saved beside the embedding it equals.
    return name.find("rotary_emb.inv_freq") != std::string::npos || (s.tied && name == "lm_head.weight");
}

}  // namespace

std::filesystem::path tokenizer_location(const std::filesystem::path& model, const std::map<std::string, std::string>& info) {
    if (is_model_folder(model)) return model;
    if (auto it = info.find("hf.source"); it != info.end()) return it->second;
    return {};
}

bool is_model_folder(const fs::path& path) {
    std::error_code ec;
    return fs::is_directory(path, ec) && fs::is_regular_file(path / "config.json", ec);
}

std::string folder_sha256(const fs::path& folder) {
    std::vector<fs::path> files{folder / "config.json"};
    for (const fs::path& f : find_weight_files(folder).files) files.push_back(f);
    std::error_code ec;
    for (const char* extra : {"model.safetensors.index.json", "tokenizer.json"})
        if (fs::is_regular_file(folder / extra, ec)) files.push_back(folder / extra);
    std::sort(files.begin(), files.end());
    std::string listing;
    for (const fs::path& f : files) listing += f.filename().string() + "=" + sha256_file(f) + "\n";
    return sha256_hex(listing);
}

std::vector<float> weight_values(const model& m, const std::string& name) {
    if (auto it = m.tensors.find(name); it != m.tensors.end()) return it->second.decode();
    // A factorized projection: layers L.a ([rank, in]) then L.b ([out, rank]), both with
    // factor_of L, where L's weight was "model." + L + ".weight" ("lm_head.weight" for the head).
    const std::string suffix = ".weight";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        throw input_error("the model has no tensor '" + name + "'");
    std::string layer_name = name.substr(0, name.size() - suffix.size());
    if (layer_name.rfind("model.", 0) == 0) layer_name = layer_name.substr(6);
    const layer* a = m.find_layer(layer_name + ".a");
    const layer* b = m.find_layer(layer_name + ".b");
    int parts = 0;
    for (const layer& l : m.layers) parts += l.factor_of == layer_name;
    if (!a || !b || a->factor_of != layer_name || b->factor_of != layer_name || parts != 2)
        throw input_error("the model has no tensor '" + name + "'" +
                          (parts > 2 ? " (its layer was factorized more than once, which export does not multiply back)" : ""));
    const tensor& ta = m.at(a->weight);
    const tensor& tb = m.at(b->weight);
    const int64_t rank = ta.shape[0], in = ta.shape[1], out = tb.shape[0];
    const std::vector<float> A = ta.decode(), B = tb.decode();
    std::vector<float> w(size_t(out * in), 0.0f);
    for (int64_t o = 0; o < out; ++o)
        for (int64_t r = 0; r < rank; ++r) {
            const float coefficient = B[size_t(o * rank + r)];
            const float* row = A.data() + r * in;
            float* dst = w.data() + o * in;
            for (int64_t i = 0; i < in; ++i) dst[i] += coefficient * row[i];
        }
    return w;
}

decoder_shape shape_of(const decoder_config& c) {
    decoder_shape s;
    s.vocab = c.vocab_size, s.hidden = c.hidden_size, s.intermediate = c.intermediate_size, s.layers = c.layers;
    s.heads = c.heads, s.kv_heads = c.kv_heads, s.head_dim = c.head_dim;
    s.rope_theta = c.rope_theta, s.rms_eps = float(c.rms_norm_eps);
    s.tied = c.tie_word_embeddings, s.qkv_bias = c.qkv_bias, s.o_bias = c.o_bias;
    return s;
}

model import_folder(const fs::path& folder) {
    const decoder_config config = read_decoder_config(folder);
    const decoder_shape shape = shape_of(config);
    const weight_files files = find_weight_files(folder);

    std::map<std::string, std::vector<int64_t>> expected;
    for (const auto& [name, dims] : decoder_tensors(shape)) expected.emplace(name, dims);
    model m;
    std::map<std::string, fs::path> found_in;
    for (const fs::path& file : files.files) {
        const std::shared_ptr<const mapped_file> mapped = map_input_file(file, max_shard_bytes);
        const safetensors::reader r(std::string_view(mapped->data, mapped->size), file.string());
        for (const auto& [name, e] : r.entries()) {
            const std::string where = file.string() + ": tensor '" + name + "'";
            if (auto listed = files.file_of.find(name); !files.file_of.empty() && (listed == files.file_of.end() || listed->second != file))
                throw input_error(where + " is not where model.safetensors.index.json puts it" +
                                  (listed == files.file_of.end() ? std::string(" (it lists no such tensor)") : " (" + listed->second.string() + ")"));
            if (found_in.count(name)) throw input_error(where + " is also in " + found_in[name].string());
            found_in[name] = file;
            auto want = expected.find(name);
            if (want == expected.end()) {
                if (ignorable(name, shape)) continue;
                throw input_error(where + " is not part of a " + config.architecture + " as config.json describes it");
            }
            if (e.shape != want->second)
                throw input_error(where + " is " + dims(e.shape) + " but config.json makes it " + dims(want->second));
            m.tensors[name] = tensor_of(e, mapped, where);
        }
    }
    for (const auto& [name, dims] : expected)
        if (!m.tensors.count(name))
            throw input_error(folder.string() + ": tensor '" + name + "' " + dims_text(dims) + ", which config.json implies, is not in the weights");
    for (const auto& [name, file] : files.file_of)
        if (!found_in.count(name)) throw input_error(file.string() + ": tensor '" + name + "', listed in the index, is not in this shard");

    set_decoder_graph(m, shape);
    m.info["hf.config"] = write_decoder_config(config);
    m.info["hf.architecture"] = config.architecture;
    m.info["hf.source"] = fs::absolute(folder).lexically_normal().string();
    m.validate();
    return m;
}

void export_folder(const model& m, const fs::path& folder, const fs::path& tokenizer_from, const std::map<std::string, std::string>& files) {
    auto cfg = m.info.find("hf.config");
    if (cfg == m.info.end())
        throw input_error("this model did not come from a Hugging Face folder (no hf.config in its info): export --format hf writes decoders "
                          "imported with shrink import DIR");
    decoder_config config = parse_decoder_config(cfg->second, "the model's hf.config");
    config.dtype = "float32";
    const decoder_shape shape = shape_of(config);
    std::error_code ec;
    if (fs::exists(folder, ec)) throw input_error(folder.string() + " exists: export writes a new folder");

    std::map<std::string, safetensors::out_entry> entries;
    for (const auto& [name, dims] : decoder_tensors(shape)) {
        auto it = m.tensors.find(name);
        uint64_t n = 1;
        for (int64_t d : dims) n *= uint64_t(d);
        if (it == m.tensors.end()) {
            // A factorized projection, multiplied back when the file is written.
            (void)weight_values(m, name);  // refused now, before anything is written, if it cannot be
            const std::string tensor_name = name;  // clang 14 (the fuzz build) cannot capture a structured binding
            entries[name] = safetensors::out_entry{"F32", dims, n * sizeof(float), [&m, tensor_name](const byte_sink& sink) {
                                                       const std::vector<float> w = weight_values(m, tensor_name);
                                                       sink(w.data(), w.size() * sizeof(float));
                                                   }};
            continue;
        }
        const tensor* t = &it->second;
        if (t->shape != dims) throw input_error("tensor '" + name + "' is " + dims_text(t->shape) + ", its config.json says " + dims_text(dims));
        entries[name] = safetensors::out_entry{"F32", dims, n * sizeof(float), [t, n](const byte_sink& sink) {
                                                   // A piece at a time: a large weight is never decoded whole.
                                                   std::vector<float> piece;
                                                   const uint64_t step = uint64_t(1) << 20;
                                                   for (uint64_t at = 0; at < n; at += step) {
                                                       piece.resize(size_t(std::min(step, n - at)));
                                                       t->decode_range(at, piece.size(), piece.data());
                                                       sink(piece.data(), piece.size() * sizeof(float));
                                                   }
                                               }};
    }
    const fs::path tmp = folder.parent_path() / (folder.filename().string() + ".tmp-" + std::to_string(getpid()));
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    try {
        write_file_atomic(tmp / "config.json", write_decoder_config(config));
        write_file_atomic_streamed(tmp / "model.safetensors", [&](const byte_sink& sink) {
            safetensors::write(entries, nlohmann::json{{"format", "pt"}}, sink);
        });
        if (!tokenizer_from.empty())
            for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
                if (fs::is_regular_file(tokenizer_from / name, ec)) fs::copy_file(tokenizer_from / name, tmp / name);
        for (const auto& [name, content] : files) write_file_atomic(tmp / name, content);
        fs::rename(tmp, folder);
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
}

}  // namespace shrink::hf
