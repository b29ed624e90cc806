#include "gguf/writer.hpp"

#include "hf/config.hpp"
#include "hf/folder.hpp"
#include "model/dtype.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <cstring>
#include <functional>
#include <map>

namespace shrink::gguf {

namespace {

// GGUF's value types and ggml's tensor types (ggml.h, gguf.h).
enum value_type : uint32_t { u32 = 4, i32 = 5, f32_value = 6, string_value = 8, array = 9 };
enum tensor_type : uint32_t { ggml_f32 = 0, ggml_f16 = 1 };
constexpr uint64_t alignment = 32;

/// Little-endian bytes, as GGUF stores everything.
class bytes_out {
  public:
    template <class T>
    void put(T v) {
        char b[sizeof(T)];
        std::memcpy(b, &v, sizeof(T));
        data.append(b, sizeof(T));
    }
    void put_string(const std::string& s) {
        put<uint64_t>(s.size());
        data += s;
    }
    std::string data;
};

/// The metadata: each key once, in the order written.
class metadata {
  public:
    void add_u32(const std::string& key, uint32_t v) { begin(key, u32).put(v); }
    void add_f32(const std::string& key, float v) { begin(key, f32_value).put(v); }
    void add_string(const std::string& key, const std::string& v) { begin(key, string_value).put_string(v); }
    void add_strings(const std::string& key, const std::vector<std::string>& v) {
        bytes_out& o = begin(key, array);
        o.put<uint32_t>(string_value);
        o.put<uint64_t>(v.size());
        for (const std::string& s : v) o.put_string(s);
    }
    void add_i32s(const std::string& key, const std::vector<int32_t>& v) {
        bytes_out& o = begin(key, array);
        o.put<uint32_t>(i32);
        o.put<uint64_t>(v.size());
        for (int32_t x : v) o.put(x);
    }
    uint64_t count = 0;
    bytes_out out;

  private:
    bytes_out& begin(const std::string& key, value_type t) {
        ++count;
        out.put_string(key);
        out.put<uint32_t>(t);
        return out;
    }
};

struct tensor_out {
    std::string name;
    std::vector<int64_t> shape;  // as in the model: [rows, cols] or [n]
    tensor_type type;
    std::function<std::vector<float>()> values;  // row-major, as the shape says
};

/// Rows of W [heads x dim, ...] (or a bias) reordered so each head's halves interleave:
/// row h*dim + 2i + j takes row h*dim + j*dim/2 + i (llama.cpp's converter's permute).
std::vector<float> interleave_halves(const std::vector<float>& w, int64_t heads, int64_t dim, int64_t cols) {
    std::vector<float> out(w.size());
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < dim / 2; ++i)
            for (int64_t j = 0; j < 2; ++j) {
                const int64_t to = h * dim + 2 * i + j, from = h * dim + j * (dim / 2) + i;
                std::memcpy(&out[size_t(to * cols)], &w[size_t(from * cols)], size_t(cols) * sizeof(float));
            }
    return out;
}

}  // namespace

void write_gguf(const model& m, const text::tokenizer& tok, const std::filesystem::path& file, weight_type type) {
    auto cfg = m.info.find("hf.config");
    if (cfg == m.info.end())
        throw input_error("this model did not come from a Hugging Face folder (no hf.config in its info): GGUF export writes decoders imported "
                          "with shrink import DIR");
    const hf::decoder_config c = hf::parse_decoder_config(cfg->second, "the model's hf.config");
    if (int64_t(tok.vocab_size()) > c.vocab_size)
        throw input_error("the tokenizer has " + std::to_string(tok.vocab_size()) + " token ids, the model's vocabulary " + std::to_string(c.vocab_size));
    const bool qwen = c.model_type == "qwen2";
    const std::string arch = qwen ? "qwen2" : "llama";

    metadata kv;
    kv.add_string("general.architecture", arch);
    kv.add_string("general.name", m.info.count("hf.source") ? std::filesystem::path(m.info.at("hf.source")).filename().string() : "shrink");
    kv.add_u32("general.alignment", uint32_t(alignment));
    kv.add_u32("general.file_type", type == weight_type::f32 ? 0 : 1);
    kv.add_u32(arch + ".vocab_size", uint32_t(c.vocab_size));
    kv.add_u32(arch + ".context_length", uint32_t(c.max_positions));
    kv.add_u32(arch + ".embedding_length", uint32_t(c.hidden_size));
    kv.add_u32(arch + ".block_count", uint32_t(c.layers));
    kv.add_u32(arch + ".feed_forward_length", uint32_t(c.intermediate_size));
    kv.add_u32(arch + ".attention.head_count", uint32_t(c.heads));
    kv.add_u32(arch + ".attention.head_count_kv", uint32_t(c.kv_heads));
    kv.add_u32(arch + ".attention.key_length", uint32_t(c.head_dim));
    kv.add_u32(arch + ".attention.value_length", uint32_t(c.head_dim));
    kv.add_u32(arch + ".rope.dimension_count", uint32_t(c.head_dim));
    kv.add_f32(arch + ".rope.freq_base", float(c.rope_theta));
    kv.add_f32(arch + ".attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));

    // The tokenizer: GPT-2-style byte-level BPE; every id of the embedding has a token
    // (ids the tokenizer leaves unused are unused placeholders).
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<bool> special(size_t(c.vocab_size), false);
    for (const auto& a : tok.spec().added) special[a.id] = a.special;
    for (int64_t id = 0; id < c.vocab_size; ++id) {
        std::string t;
        bool known = id < int64_t(tok.vocab_size());
        if (known) {
            try {
                t = tok.token(uint32_t(id));
            } catch (const std::out_of_range&) {
                known = false;
            }
        }
        tokens.push_back(known ? t : "[PAD" + std::to_string(id) + "]");
        types.push_back(!known ? 5 : special[size_t(id)] ? 3 : 1);  // unused, control, normal
    }
    std::vector<std::string> merges;
    for (const auto& [a, b] : tok.spec().merges) merges.push_back(a + " " + b);
    kv.add_string("tokenizer.ggml.model", "gpt2");
    kv.add_string("tokenizer.ggml.pre", "gpt-2");
    kv.add_strings("tokenizer.ggml.tokens", tokens);
    kv.add_i32s("tokenizer.ggml.token_type", types);
    kv.add_strings("tokenizer.ggml.merges", merges);
    if (c.bos_token_id) kv.add_u32("tokenizer.ggml.bos_token_id", uint32_t(*c.bos_token_id));
    if (!c.eos_token_ids.empty()) kv.add_u32("tokenizer.ggml.eos_token_id", uint32_t(c.eos_token_ids[0]));

    // The tensors, in llama.cpp's names.
    std::vector<tensor_out> tensors;
    const tensor_type big = type == weight_type::f32 ? ggml_f32 : ggml_f16;
    using transform = std::function<std::vector<float>(std::vector<float>)>;
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& [name, dims] : decoder_tensors(hf::shape_of(c))) shapes[name] = dims;
    auto add = [&](const std::string& gguf_name, const std::string& hf_name, tensor_type t, transform f = {}) {
        // A factorized projection is multiplied back when written; one the model lacks is
        // refused now, before anything is written.
        if (!m.tensors.count(hf_name)) (void)hf::weight_values(m, hf_name);
        const std::vector<int64_t>& dims = shapes.at(hf_name);
        tensors.push_back({gguf_name, dims, dims.size() == 1 ? ggml_f32 : t, [&m, hf_name, f] {
                               std::vector<float> v = hf::weight_values(m, hf_name);  // decoded, or factors multiplied back
                               return f ? f(std::move(v)) : v;
                           }});
    };
    auto permuted = [&](int64_t heads, int64_t cols) -> transform {
        if (qwen) return nullptr;  // qwen2 rotates halves, as transformers does
        return [heads, cols, &c](std::vector<float> v) { return interleave_halves(v, heads, c.head_dim, cols); };
    };
    add("token_embd.weight", "model.embed_tokens.weight", big);
    for (int64_t i = 0; i < c.layers; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".", w = "model.layers." + std::to_string(i) + ".";
        add(b + "attn_norm.weight", w + "input_layernorm.weight", ggml_f32);
        for (const auto& [p, heads] : {std::pair{"q", c.heads}, std::pair{"k", c.kv_heads}}) {
            const std::string hf = w + "self_attn." + p + "_proj.";
            add(b + "attn_" + p + ".weight", hf + "weight", big, permuted(heads, c.hidden_size));
            if (c.qkv_bias) add(b + "attn_" + p + ".bias", hf + "bias", ggml_f32, permuted(heads, 1));
        }
        add(b + "attn_v.weight", w + "self_attn.v_proj.weight", big);
        if (c.qkv_bias) add(b + "attn_v.bias", w + "self_attn.v_proj.bias", ggml_f32);
        add(b + "attn_output.weight", w + "self_attn.o_proj.weight", big);
        if (c.o_bias) add(b + "attn_output.bias", w + "self_attn.o_proj.bias", ggml_f32);
        add(b + "ffn_norm.weight", w + "post_attention_layernorm.weight", ggml_f32);
        add(b + "ffn_gate.weight", w + "mlp.gate_proj.weight", big);
        add(b + "ffn_up.weight", w + "mlp.up_proj.weight", big);
        add(b + "ffn_down.weight", w + "mlp.down_proj.weight", big);
    }
    add("output_norm.weight", "model.norm.weight", ggml_f32);
    if (!c.tie_word_embeddings) add("output.weight", "lm_head.weight", big);

    bytes_out head;
    head.data = "GGUF";
    head.put<uint32_t>(3);
    head.put<uint64_t>(tensors.size());
    head.put<uint64_t>(kv.count);
    head.data += kv.out.data;
    uint64_t offset = 0;
    auto padded = [](uint64_t n) { return (n + alignment - 1) / alignment * alignment; };
    for (const tensor_out& t : tensors) {
        head.put_string(t.name);
        head.put<uint32_t>(uint32_t(t.shape.size()));
        for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) head.put<uint64_t>(uint64_t(*d));  // ggml: innermost first
        head.put<uint32_t>(t.type);
        head.put<uint64_t>(offset);
        uint64_t n = 1;
        for (int64_t d : t.shape) n *= uint64_t(d);
        offset = padded(offset + n * (t.type == ggml_f32 ? 4 : 2));
    }
    head.data.resize(padded(head.data.size()), '\0');
    write_file_atomic_streamed(file, [&](const byte_sink& sink) {
        sink(head.data.data(), head.data.size());
        for (const tensor_out& t : tensors) {
            const std::vector<float> v = t.values();
            uint64_t written;
            if (t.type == ggml_f32) {
                sink(v.data(), v.size() * 4);
                written = v.size() * 4;
            } else {
                std::vector<uint16_t> h(v.size());
                for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16(v[i]);
                sink(h.data(), h.size() * 2);
                written = h.size() * 2;
            }
            static const char zeros[alignment] = {};
            sink(zeros, padded(written) - written);
        }
    });
}

}  // namespace shrink::gguf
