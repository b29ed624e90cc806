// A Llama-family decoder in shrink's ops (model/decoder.hpp) run by the CPU engine,
// against a direct float64 forward pass written here from the definitions (transformers'
// Llama: RMSNorm, rotate-half rotary embeddings, grouped-query causal attention, SwiGLU),
// not from the engine's kernels.
#include "cpu/engine.hpp"
#include "model/decoder.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace shrink;

namespace {

using vec = std::vector<double>;

vec weights(const model& m, const std::string& name) {
    const std::vector<float> f = m.at(name).decode();
    return vec(f.begin(), f.end());
}

/// y = W x (+ b), W [out, in].
vec affine(const model& m, const std::string& w, const vec& x, const std::string& b = {}) {
    const vec W = weights(m, w);
    const size_t in = x.size(), out = W.size() / in;
    vec y(out, 0.0);
    if (!b.empty()) y = weights(m, b);
    for (size_t o = 0; o < out; ++o)
        for (size_t i = 0; i < in; ++i) y[o] += W[o * in + i] * x[i];
    return y;
}

vec rms(const model& m, const std::string& w, const vec& x, double eps) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1 / std::sqrt(ss / double(x.size()) + eps);
    const vec g = weights(m, w);
    vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
    return y;
}

void rope(vec& x, int64_t heads, int64_t dim, int64_t pos, double theta) {
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < dim / 2; ++i) {
            const double angle = double(pos) / std::pow(theta, 2.0 * double(i) / double(dim));
            double& a = x[size_t(h * dim + i)];
            double& b = x[size_t(h * dim + i + dim / 2)];
            const double a0 = a, b0 = b;
            a = a0 * std::cos(angle) - b0 * std::sin(angle);
            b = b0 * std::cos(angle) + a0 * std::sin(angle);
        }
}

/// The logits of one window of token ids, position 0 first.
std::vector<vec> reference(const model& m, const decoder_shape& s, const std::vector<int>& ids) {
    const size_t T = ids.size();
    const vec E = weights(m, "model.embed_tokens.weight");
    std::vector<vec> x(T);
    for (size_t t = 0; t < T; ++t) x[t] = vec(E.begin() + ids[t] * s.hidden, E.begin() + (ids[t] + 1) * s.hidden);
    for (int64_t l = 0; l < s.layers; ++l) {
        const std::string w = "model.layers." + std::to_string(l);
        std::vector<vec> q(T), k(T), v(T);
        for (size_t t = 0; t < T; ++t) {
            const vec n = rms(m, w + ".input_layernorm.weight", x[t], s.rms_eps);
            const std::string b = s.qkv_bias ? ".bias" : "";
            q[t] = affine(m, w + ".self_attn.q_proj.weight", n, b.empty() ? "" : w + ".self_attn.q_proj.bias");
            k[t] = affine(m, w + ".self_attn.k_proj.weight", n, b.empty() ? "" : w + ".self_attn.k_proj.bias");
            v[t] = affine(m, w + ".self_attn.v_proj.weight", n, b.empty() ? "" : w + ".self_attn.v_proj.bias");
            rope(q[t], s.heads, s.head_dim, int64_t(t), s.rope_theta);
            rope(k[t], s.kv_heads, s.head_dim, int64_t(t), s.rope_theta);
        }
        for (size_t t = 0; t < T; ++t) {
            vec attn(size_t(s.heads * s.head_dim), 0.0);
            for (int64_t h = 0; h < s.heads; ++h) {
                const int64_t kvh = h / (s.heads / s.kv_heads), D = s.head_dim;
                vec score(t + 1);
                double top = -1e300, total = 0;
                for (size_t j = 0; j <= t; ++j) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d) dot += q[t][size_t(h * D + d)] * k[j][size_t(kvh * D + d)];
                    score[j] = dot / std::sqrt(double(D));
                    top = std::max(top, score[j]);
                }
                for (double& sc : score) total += sc = std::exp(sc - top);
                for (size_t j = 0; j <= t; ++j)
                    for (int64_t d = 0; d < D; ++d) attn[size_t(h * D + d)] += score[j] / total * v[j][size_t(kvh * D + d)];
            }
            const vec o = affine(m, w + ".self_attn.o_proj.weight", attn, s.o_bias ? w + ".self_attn.o_proj.bias" : "");
            vec h = x[t];
            for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
            const vec n2 = rms(m, w + ".post_attention_layernorm.weight", h, s.rms_eps);
            const vec gate = affine(m, w + ".mlp.gate_proj.weight", n2), up = affine(m, w + ".mlp.up_proj.weight", n2);
            vec a(gate.size());
            for (size_t i = 0; i < a.size(); ++i) a[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
            const vec down = affine(m, w + ".mlp.down_proj.weight", a);
            for (size_t i = 0; i < h.size(); ++i) h[i] += down[i];
            x[t] = h;
        }
    }
    std::vector<vec> logits(T);
    for (size_t t = 0; t < T; ++t)
        logits[t] = affine(m, s.tied ? "model.embed_tokens.weight" : "lm_head.weight", rms(m, "model.norm.weight", x[t], s.rms_eps));
    return logits;
}

double worst_difference(const std::vector<float>& got, const std::vector<vec>& want, size_t first_row = 0) {
    double worst = 0;
    for (size_t t = 0; t < want.size(); ++t)
        for (size_t i = 0; i < want[t].size(); ++i)
            worst = std::max(worst, std::abs(double(got[(first_row + t) * want[t].size() + i]) - want[t][i]) / (1 + std::abs(want[t][i])));
    return worst;
}

}  // namespace

TEST_CASE("a decoder runs as the direct float64 forward pass computes it", "[decoder]") {
    decoder_shape s = test::tiny_decoder_shape();
    SECTION("Llama: grouped-query attention, untied head") {}
    SECTION("Qwen 2: q/k/v biases, tied head, head_dim past hidden / heads") {
        s.qkv_bias = s.tied = true;
        s.head_dim = 16, s.rope_theta = 1e6;
    }
    SECTION("Llama with attention_bias, one key/value head") {
        s.qkv_bias = s.o_bias = true;
        s.kv_heads = 1;
    }
    const model m = test::random_decoder(s, 3);
    const std::vector<int> ids{1, 5, 36, 0, 7, 7, 12, 30, 2};
    const std::vector<float> got = test::decoder_logits(m, {ids});
    CHECK(worst_difference(got, reference(m, s, ids)) < 1e-4);

    // Two windows in one batch: each attends only within itself.
    const std::vector<int> other{4, 4, 9, 33};
    const std::vector<float> both = test::decoder_logits(m, {ids, other});
    CHECK(worst_difference(both, reference(m, s, ids)) < 1e-4);
    CHECK(worst_difference(both, reference(m, s, other), ids.size()) < 1e-4);

    // The graph survives the model file, and the same logits come back.
    test::temp_dir dir;
    save_model(m, dir / "lm.safetensors");
    CHECK(test::decoder_logits(load_model(dir / "lm.safetensors"), {ids}) == got);
}

TEST_CASE("a decoder refuses token ids outside its vocabulary and positions that do not count up", "[decoder]") {
    decoder_shape s;
    s.vocab = 10, s.hidden = 16, s.intermediate = 16, s.layers = 1, s.heads = 2, s.kv_heads = 2, s.head_dim = 8;
    const model m = test::random_decoder(s, 4);
    std::vector<float> bad_id{3, 0, 10, 1};
    CHECK_THROWS_WITH(engine(m).run(bad_id.data(), 2), Catch::Contains("token id 10") && Catch::Contains("vocabulary of 10"));
    std::vector<float> bad_position{3, 0, 4, 2};
    CHECK_THROWS_WITH(engine(m).run(bad_position.data(), 2), Catch::Contains("positions must count up from 0"));
    // The tokens input must be [2]: a decoder's graph checks it.
    model wrong = m;
    wrong.input_features = 3;
    CHECK_THROWS_WITH(wrong.validate(), Catch::Contains("reads the model's tokens"));
}
