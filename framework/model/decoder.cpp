#include "model/decoder.hpp"

namespace shrink {

namespace {

std::string block(int64_t i) { return "layers." + std::to_string(i); }
std::string weights(int64_t i) { return "model.layers." + std::to_string(i); }

}  // namespace

std::string block_of(const std::string& name) {
    for (size_t at = name.find("layers."); at != std::string::npos; at = name.find("layers.", at + 1)) {
        if (at && name[at - 1] != '.') continue;
        size_t end = at + 7;
        while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
        if (end > at + 7 && end < name.size() && name[end] == '.') return name.substr(0, end);
    }
    return {};
}

std::vector<std::pair<std::string, std::vector<int64_t>>> decoder_tensors(const decoder_shape& s) {
    std::vector<std::pair<std::string, std::vector<int64_t>>> t{{"model.embed_tokens.weight", {s.vocab, s.hidden}}};
    const int64_t q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
    for (int64_t i = 0; i < s.layers; ++i) {
        const std::string w = weights(i);
        t.push_back({w + ".input_layernorm.weight", {s.hidden}});
        t.push_back({w + ".self_attn.q_proj.weight", {q, s.hidden}});
        t.push_back({w + ".self_attn.k_proj.weight", {kv, s.hidden}});
        t.push_back({w + ".self_attn.v_proj.weight", {kv, s.hidden}});
        if (s.qkv_bias) {
            t.push_back({w + ".self_attn.q_proj.bias", {q}});
            t.push_back({w + ".self_attn.k_proj.bias", {kv}});
            t.push_back({w + ".self_attn.v_proj.bias", {kv}});
        }
        t.push_back({w + ".self_attn.o_proj.weight", {s.hidden, q}});
        if (s.o_bias) t.push_back({w + ".self_attn.o_proj.bias", {s.hidden}});
        t.push_back({w + ".post_attention_layernorm.weight", {s.hidden}});
        t.push_back({w + ".mlp.gate_proj.weight", {s.intermediate, s.hidden}});
        t.push_back({w + ".mlp.up_proj.weight", {s.intermediate, s.hidden}});
        t.push_back({w + ".mlp.down_proj.weight", {s.hidden, s.intermediate}});
    }
    t.push_back({"model.norm.weight", {s.hidden}});
    if (!s.tied) t.push_back({"lm_head.weight", {s.vocab, s.hidden}});
    return t;
}

void set_decoder_graph(model& m, const decoder_shape& s) {
    m.input = "tokens";
    m.input_features = 2;
    m.input_shape.clear();
    m.output = "logits";
    m.layers.clear();
    auto add = [&](layer l) { m.layers.push_back(std::move(l)); };
    auto norm = [&](const std::string& name, const std::string& in, const std::string& weight) {
        layer l = make_layer(name, "rms_norm", in, name + ".out", weight);
        l.alpha = s.rms_eps;
        add(l);
        return name + ".out";
    };
    auto linear = [&](const std::string& name, const std::string& in, const std::string& weight, bool bias) {
        add(make_layer(name, "linear", in, name + ".out", weight + ".weight", bias ? weight + ".bias" : std::string()));
        return name + ".out";
    };

    add(make_layer("embed_tokens", "embedding", "tokens", "embed_tokens.out", "model.embed_tokens.weight"));
    std::string x = "embed_tokens.out";
    for (int64_t i = 0; i < s.layers; ++i) {
        const std::string b = block(i), w = weights(i);
        const std::string n = norm(b + ".input_layernorm", x, w + ".input_layernorm.weight");
        const std::string q = linear(b + ".self_attn.q_proj", n, w + ".self_attn.q_proj", s.qkv_bias);
        const std::string k = linear(b + ".self_attn.k_proj", n, w + ".self_attn.k_proj", s.qkv_bias);
        const std::string v = linear(b + ".self_attn.v_proj", n, w + ".self_attn.v_proj", s.qkv_bias);
        layer a = make_layer(b + ".self_attn", "attention", q, b + ".self_attn.out");
        a.more_inputs = {k, v, "tokens"};
        a.attn = attention_spec{s.heads, s.kv_heads, s.head_dim, s.rope_theta};
        add(a);
        const std::string o = linear(b + ".self_attn.o_proj", a.output, w + ".self_attn.o_proj", s.o_bias);
        layer r1 = make_layer(b + ".attn_residual", "add", x, b + ".attn_residual.out");
        r1.more_inputs = {o};
        add(r1);
        const std::string h = r1.output;
        const std::string n2 = norm(b + ".post_attention_layernorm", h, w + ".post_attention_layernorm.weight");
        const std::string gate = linear(b + ".mlp.gate_proj", n2, w + ".mlp.gate_proj", false);
        const std::string up = linear(b + ".mlp.up_proj", n2, w + ".mlp.up_proj", false);
        add(make_layer(b + ".mlp.act", "silu", gate, b + ".mlp.act.out"));
        layer gu = make_layer(b + ".mlp.gated", "mul", b + ".mlp.act.out", b + ".mlp.gated.out");
        gu.more_inputs = {up};
        add(gu);
        const std::string down = linear(b + ".mlp.down_proj", gu.output, w + ".mlp.down_proj", false);
        layer r2 = make_layer(b + ".mlp_residual", "add", h, b + ".mlp_residual.out");
        r2.more_inputs = {down};
        add(r2);
        x = r2.output;
    }
    const std::string final_norm = norm("norm", x, "model.norm.weight");
    add(make_layer("lm_head", "linear", final_norm, "logits", s.tied ? "model.embed_tokens.weight" : "lm_head.weight"));
}

}  // namespace shrink
