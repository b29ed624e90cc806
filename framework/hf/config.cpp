#include "hf/config.hpp"
#include "util/files.hpp"
#include "util/json_fields.hpp"

#include <map>

namespace shrink::hf {

namespace {

using json = nlohmann::json;

constexpr uint64_t max_config_bytes = 16 << 20;

// What each architecture is, as transformers defines it.
struct family {
    const char* model_type;
    bool qkv_bias;           // always biased q/k/v (Qwen 2); else attention_bias decides
    bool has_sliding_window;
};
const std::map<std::string, family>& families() {
    static const std::map<std::string, family> f{
        {"LlamaForCausalLM", {"llama", false, false}},
        {"MistralForCausalLM", {"mistral", false, true}},
        {"Qwen2ForCausalLM", {"qwen2", true, true}},
    };
    return f;
}

// Bounds that keep every size computed from the config well inside 64 bits (the largest
// released models are far inside them).
constexpr int64_t max_width = int64_t(1) << 20;
constexpr int64_t max_vocab = (int64_t(1) << 24) - 1;  // token ids stay exact as floats

const json* find(const json& o, const char* key) {
    auto it = o.find(key);
    return it == o.end() || it->is_null() ? nullptr : &*it;
}

void read_rope(const json_fields& r, const json& doc, decoder_config& c) {
    // transformers 5 writes rope_parameters {rope_type, rope_theta}; earlier versions
    // rope_theta at the top level and rope_scaling for anything but the default.
    const json* params = find(doc, "rope_parameters");
    const json* scaling = find(doc, "rope_scaling");
    for (const auto& [name, block] : {std::pair{"rope_parameters", params}, std::pair{"rope_scaling", scaling}}) {
        if (!block) continue;
        if (!block->is_object()) r.fail(name, "must be an object");
        for (const char* key : {"rope_type", "type"}) {
            const json* t = find(*block, key);
            if (!t) continue;
            const std::string type = r.string_of(*t, std::string(name) + "." + key);
            if (type != "default")
                r.fail(std::string(name) + "." + key,
                       "'" + type + "' is not supported: shrink implements the default rotary embedding only (no scaling)");
        }
        if (std::string(name) == "rope_scaling") {
            for (auto it = block->begin(); it != block->end(); ++it)
                if (it.key() != "rope_type" && it.key() != "type" && !it->is_null())
                    r.fail("rope_scaling." + it.key(), "is not supported: shrink implements the default rotary embedding only (no scaling)");
        }
    }
    const json* theta = params ? find(*params, "rope_theta") : nullptr;
    const char* theta_key = "rope_parameters.rope_theta";
    if (!theta) {
        theta = find(doc, "rope_theta");
        theta_key = "rope_theta";
    }
    if (theta) c.rope_theta = r.number_of(*theta, theta_key, 1.0, 1e12);
    if (const json* partial = find(doc, "partial_rotary_factor"); partial && r.number_of(*partial, "partial_rotary_factor", 0, 1) != 1.0)
        r.fail("partial_rotary_factor", partial->dump() + " is not supported: shrink rotates the whole head");
}

}  // namespace

decoder_config parse_decoder_config(const std::string& json_text, const std::filesystem::path& file) {
    const json_fields r(file);
    const json doc = r.parse_object(json_text);
    decoder_config c;

    const json& archs = r.field(doc, "architectures", "");
    if (!archs.is_array() || archs.size() != 1) r.fail("architectures", "must list one architecture");
    c.architecture = r.string_of(archs[0], "architectures[0]");
    auto fam = families().find(c.architecture);
    if (fam == families().end()) {
        std::string known;
        for (const auto& [name, f] : families()) known += (known.empty() ? "" : ", ") + name;
        r.fail("architectures[0]", "'" + c.architecture + "' is not supported (shrink reads " + known + ")");
    }
    c.model_type = fam->second.model_type;
    if (const json* t = find(doc, "model_type"); t && r.string_of(*t, "model_type") != c.model_type)
        r.fail("model_type", "'" + t->get<std::string>() + "' does not match " + c.architecture + " ('" + c.model_type + "')");

    c.vocab_size = r.int_of(r.field(doc, "vocab_size", ""), "vocab_size", 1, max_vocab);
    c.hidden_size = r.int_of(r.field(doc, "hidden_size", ""), "hidden_size", 1, max_width);
    c.intermediate_size = r.int_of(r.field(doc, "intermediate_size", ""), "intermediate_size", 1, max_width * 8);
    c.layers = r.int_of(r.field(doc, "num_hidden_layers", ""), "num_hidden_layers", 1, 4096);
    c.heads = r.int_of(r.field(doc, "num_attention_heads", ""), "num_attention_heads", 1, 65536);
    const json* kv = find(doc, "num_key_value_heads");
    c.kv_heads = kv ? r.int_of(*kv, "num_key_value_heads", 1, c.heads) : c.heads;
    if (c.heads % c.kv_heads != 0)
        r.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(c.heads) + "), got " + std::to_string(c.kv_heads));
    if (const json* hd = find(doc, "head_dim")) {
        c.head_dim = r.int_of(*hd, "head_dim", 2, 4096);
    } else {
        if (c.hidden_size % c.heads != 0)
            r.fail("hidden_size", std::to_string(c.hidden_size) + " is not a multiple of num_attention_heads (" + std::to_string(c.heads) +
                                      ") and head_dim is not given");
        c.head_dim = c.hidden_size / c.heads;
    }
    if (c.head_dim % 2 != 0) r.fail("head_dim", std::to_string(c.head_dim) + " is odd: rotary embeddings rotate pairs");
    if (c.heads * c.head_dim > max_width) r.fail("head_dim", "num_attention_heads x head_dim is past " + std::to_string(max_width));
    c.max_positions = r.int_of(r.field(doc, "max_position_embeddings", ""), "max_position_embeddings", 1, int64_t(1) << 24);
    if (const json* eps = find(doc, "rms_norm_eps")) c.rms_norm_eps = r.number_of(*eps, "rms_norm_eps", 0, 1);
    read_rope(r, doc, c);

    if (const json* act = find(doc, "hidden_act"); act && r.string_of(*act, "hidden_act") != "silu")
        r.fail("hidden_act", "'" + act->get<std::string>() + "' is not supported (the SwiGLU MLP of these families uses silu)");
    if (r.bool_of(doc, "mlp_bias", "", false)) r.fail("mlp_bias", "true is not supported");
    const bool attention_bias = r.bool_of(doc, "attention_bias", "", false);
    c.qkv_bias = fam->second.qkv_bias || attention_bias;
    c.o_bias = attention_bias && !fam->second.qkv_bias;
    c.tie_word_embeddings = r.bool_of(doc, "tie_word_embeddings", "", false);

    // A sliding window changes which tokens attend to which, past its length.
    if (fam->second.has_sliding_window) {
        const bool used = c.architecture == "Qwen2ForCausalLM" ? r.bool_of(doc, "use_sliding_window", "", false) : true;
        if (const json* w = find(doc, "sliding_window"); used && w) {
            const int64_t window = r.int_of(*w, "sliding_window", 1, int64_t(1) << 40);
            if (window < c.max_positions)
                r.fail("sliding_window", std::to_string(window) + " is shorter than max_position_embeddings (" + std::to_string(c.max_positions) +
                                             "): sliding-window attention is not supported");
        }
    }
    if (const json* bos = find(doc, "bos_token_id")) c.bos_token_id = r.int_of(*bos, "bos_token_id", 0, c.vocab_size - 1);
    if (const json* eos = find(doc, "eos_token_id")) {
        if (eos->is_array()) {
            for (size_t i = 0; i < eos->size(); ++i)
                c.eos_token_ids.push_back(r.int_of((*eos)[i], "eos_token_id[" + std::to_string(i) + "]", 0, c.vocab_size - 1));
        } else {
            c.eos_token_ids.push_back(r.int_of(*eos, "eos_token_id", 0, c.vocab_size - 1));
        }
    }
    for (const char* key : {"dtype", "torch_dtype"})
        if (const json* d = find(doc, key); d && d->is_string()) c.dtype = d->get<std::string>();
    return c;
}

decoder_config read_decoder_config(const std::filesystem::path& path) {
    std::error_code ec;
    const std::filesystem::path file = std::filesystem::is_directory(path, ec) ? path / "config.json" : path;
    const std::string text = read_input_file(file, max_config_bytes);
    return parse_decoder_config(text, file);
}

std::string write_decoder_config(const decoder_config& c) {
    json doc = json::object();
    doc["architectures"] = json::array({c.architecture});
    doc["model_type"] = c.model_type;
    doc["vocab_size"] = c.vocab_size;
    doc["hidden_size"] = c.hidden_size;
    doc["intermediate_size"] = c.intermediate_size;
    doc["num_hidden_layers"] = c.layers;
    doc["num_attention_heads"] = c.heads;
    doc["num_key_value_heads"] = c.kv_heads;
    doc["head_dim"] = c.head_dim;
    doc["max_position_embeddings"] = c.max_positions;
    doc["rms_norm_eps"] = c.rms_norm_eps;
    doc["rope_theta"] = c.rope_theta;
    doc["rope_scaling"] = nullptr;
    doc["hidden_act"] = "silu";
    doc["tie_word_embeddings"] = c.tie_word_embeddings;
    if (c.model_type == "llama") {
        doc["attention_bias"] = c.qkv_bias;
        doc["mlp_bias"] = false;
    }
    if (c.model_type == "mistral") doc["sliding_window"] = nullptr;
    if (c.model_type == "qwen2") doc["use_sliding_window"] = false;
    if (c.bos_token_id) doc["bos_token_id"] = *c.bos_token_id;
    if (c.eos_token_ids.size() == 1) doc["eos_token_id"] = c.eos_token_ids[0];
    else if (!c.eos_token_ids.empty()) doc["eos_token_id"] = c.eos_token_ids;
    doc["torch_dtype"] = c.dtype.empty() ? "float32" : c.dtype;
    return doc.dump(2) + "\n";
}

}  // namespace shrink::hf
