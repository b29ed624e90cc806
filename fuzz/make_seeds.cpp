// Writes seed inputs for the model readers' fuzz targets, made by shrink's own writers so
// that they reach deep: small models in every encoding (f32, bf16, f16, int8 per channel,
// int4 per group, asymmetric, sparse, sparse and quantized, factorized) and graph shape
// (an MLP, a CNN with batchnorm, grouped conv and pooling, a residual join), as
// safetensors files and, where ONNX export takes them, as ONNX files. Deterministic.
//
// With more folders, also tokenizer.json files in the GPT-2, Llama 3 and Qwen 2 forms,
// config.json files of the three decoder families, and shard indexes.
//
//   fuzz_seeds SAFETENSORS_DIR ONNX_DIR [TOKENIZER_DIR [HF_CONFIG_DIR SHARD_INDEX_DIR]]
#include "hf/config.hpp"
#include "model/dtype.hpp"
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "text/tokenizer_spec.hpp"
#include "tokenizer_samples.hpp"
#include "util/files.hpp"
#include "util/random.hpp"

#include <cstdio>
#include <filesystem>
#include <functional>

using namespace shrink;
namespace fs = std::filesystem;

namespace {

std::string add_tensor(model& m, rng& g, const std::string& name, std::vector<int64_t> shape, double sd) {
    tensor t;
    t.shape = std::move(shape);
    std::vector<float> v;
    for (uint64_t i = 0; i < t.element_count(); ++i) v.push_back(float(g.normal() * sd));
    t.values = std::move(v);
    m.tensors[name] = t;
    return name;
}

model mlp(uint64_t seed) {
    model m;
    m.input_features = 6;
    rng g(seed);
    std::string x = m.input;
    const int64_t widths[] = {6, 5, 4, 3};
    for (int l = 0; l < 3; ++l) {
        const std::string name = "fc" + std::to_string(l + 1);
        m.layers.push_back(make_layer(name, "linear", x, name + ".out", add_tensor(m, g, name + ".weight", {widths[l + 1], widths[l]}, 0.3),
                                      add_tensor(m, g, name + ".bias", {widths[l + 1]}, 0.1)));
        x = name + ".out";
        if (l < 2) {
            m.layers.push_back(make_layer("act" + std::to_string(l), l ? "gelu" : "relu", x, "act" + std::to_string(l) + ".out"));
            x = "act" + std::to_string(l) + ".out";
        }
    }
    m.layers.push_back(make_layer("softmax", "softmax", x, "probs"));
    m.output = "probs";
    m.validate();
    return m;
}

model cnn(uint64_t seed) {
    model m;
    m.input_shape = {2, 4, 4};
    m.input_features = 32;
    rng g(seed);
    auto add = [&](layer l) {
        m.layers.push_back(l);
        return l.output;
    };
    std::string x = m.input;
    layer c1 = make_layer("conv1", "conv", x, "c1", add_tensor(m, g, "conv1.weight", {4, 2, 3, 3}, 0.4), add_tensor(m, g, "conv1.bias", {4}, 0.1));
    c1.win.kernel = {3, 3};
    c1.win.pads = {1, 1, 1, 1};
    x = add(c1);
    x = add(make_layer("bn1", "batchnorm", x, "b1", add_tensor(m, g, "bn1.scale", {4}, 1.0), add_tensor(m, g, "bn1.shift", {4}, 0.1)));
    const std::string skip = add(make_layer("relu1", "relu", x, "r1"));
    layer c2 = make_layer("conv2", "conv", skip, "c2", add_tensor(m, g, "conv2.weight", {4, 2, 3, 3}, 0.3));
    c2.win.kernel = {3, 3};
    c2.win.pads = {1, 1, 1, 1};
    c2.win.group = 2;
    x = add(c2);
    layer join = make_layer("join", "add", x, "j");
    join.more_inputs = {skip};
    x = add(join);
    layer p = make_layer("pool", "max_pool", x, "p");
    p.win.kernel = p.win.strides = {2, 2};
    x = add(p);
    x = add(make_layer("flatten", "flatten", x, "f"));
    m.output = add(make_layer("fc", "linear", x, "out", add_tensor(m, g, "fc.weight", {5, 16}, 0.2), add_tensor(m, g, "fc.bias", {5}, 0.1)));
    m.validate();
    return m;
}

/// Round to nearest per row (group 0: one group per row) or per group of `group` along a row.
void quantize(tensor& t, uint8_t bits, bool symmetric, uint64_t group) {
    const std::vector<float> v = t.decode();
    const uint64_t rows = t.rows(), cols = t.cols(), g = group ? group : cols, groups = (cols + g - 1) / g;
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    std::vector<int8_t> q(v.size()), zeros;
    std::vector<float> scales;
    for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t k = 0; k < groups; ++k) {
            float a = 0, mn = 0, mx = 0;
            for (uint64_t c = k * g; c < std::min(cols, (k + 1) * g); ++c) {
                a = std::max(a, std::abs(v[r * cols + c]));
                mn = std::min(mn, v[r * cols + c]);
                mx = std::max(mx, v[r * cols + c]);
            }
            const float s = symmetric ? (a > 0 ? a / float(hi) : 1) : (mx > mn ? (mx - mn) / float(hi - lo) : 1);
            const int z = symmetric ? 0 : std::clamp(int(std::lrint(lo - mn / s)), lo, hi);
            scales.push_back(s);
            if (!symmetric) zeros.push_back(int8_t(z));
            for (uint64_t c = k * g; c < std::min(cols, (k + 1) * g); ++c)
                q[r * cols + c] = int8_t(std::clamp(int(std::lrint(v[r * cols + c] / s)) + z, lo, hi));
        }
    t = make_quantized(t, {bits, symmetric, g}, std::move(q), std::move(scales), std::move(zeros));
}

/// A table encoding: NF4 in groups of `group` (scales double-quantized), or a k-means-like
/// table per row of 16 evenly spaced values (the file format is what matters here).
void to_table(tensor& t, bool nf4, uint64_t group) {
    const std::vector<float> v = t.decode();
    const uint64_t rows = t.rows(), cols = t.cols();
    std::vector<int8_t> q(v.size());
    std::vector<float> scales, table;
    auto nearest = [](const float* values, float x) {
        int best = 0;
        for (int j = 1; j < 16; ++j)
            if (std::abs(values[j] - x) < std::abs(values[best] - x)) best = j;
        return int8_t(best - 8);
    };
    quant_spec spec(4, true, nf4 ? group : 0);
    spec.table = nf4 ? "nf4" : "kmeans";
    spec.books = nf4 ? 0 : rows;
    spec.double_quant = nf4;
    for (uint64_t r = 0; r < rows; ++r) {
        if (nf4) {
            for (uint64_t k = 0; k * group < cols; ++k) {
                float a = 0;
                for (uint64_t c = k * group; c < std::min(cols, (k + 1) * group); ++c) a = std::max(a, std::abs(v[r * cols + c]));
                scales.push_back(a);
                for (uint64_t c = k * group; c < std::min(cols, (k + 1) * group); ++c)
                    q[r * cols + c] = nearest(nf4_table.data(), a > 0 ? v[r * cols + c] / a : 0);
            }
        } else {
            const float lo = *std::min_element(v.begin() + long(r * cols), v.begin() + long((r + 1) * cols));
            const float hi = *std::max_element(v.begin() + long(r * cols), v.begin() + long((r + 1) * cols));
            for (int j = 0; j < 16; ++j) table.push_back(lo + (hi - lo) * float(j) / 15);
            for (uint64_t c = 0; c < cols; ++c) q[r * cols + c] = nearest(table.data() + r * 16, v[r * cols + c]);
        }
    }
    t = make_table_quantized(t, spec, std::move(q), std::move(scales), std::move(table));
}

void prune(tensor& t) {
    std::vector<float> v = t.decode();
    std::vector<uint8_t> mask(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        mask[i] = i % 3 != 0;
        if (!mask[i]) v[i] = 0;
    }
    t.values.assign(v.begin(), v.end());
    t.mask.assign(mask.begin(), mask.end());
}

void to_16_bits(tensor& t, dtype type) {
    std::vector<uint16_t> bits;
    for (float v : t.decode()) bits.push_back(type == dtype::bf16 ? f32_to_bf16(v) : f32_to_f16(v));
    t.type = type;
    t.half = std::move(bits);
    t.values.clear();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4 && argc != 6) {
        std::fprintf(stderr, "usage: fuzz_seeds SAFETENSORS_DIR ONNX_DIR [TOKENIZER_DIR [HF_CONFIG_DIR SHARD_INDEX_DIR]]\n");
        return 2;
    }
    const fs::path st = argv[1], ox = argv[2];
    fs::create_directories(st);
    fs::create_directories(ox);
    const std::vector<std::pair<std::string, std::function<model()>>> seeds{
        {"mlp", [] { return mlp(1); }},
        {"cnn", [] { return cnn(2); }},
        {"bf16", [] {
             model m = mlp(3);
             to_16_bits(m.at("fc1.weight"), dtype::bf16);
             return m;
         }},
        {"f16", [] {
             model m = mlp(4);
             to_16_bits(m.at("fc2.weight"), dtype::f16);
             return m;
         }},
        {"int8", [] {
             model m = mlp(5);
             quantize(m.at("fc1.weight"), 8, true, 0);
             quantize(m.at("fc2.weight"), 8, false, 0);
             return m;
         }},
        {"int4_grouped", [] {
             model m = mlp(6);
             quantize(m.at("fc1.weight"), 4, false, 4);
             quantize(m.at("fc2.weight"), 4, true, 3);
             return m;
         }},
        {"sparse", [] {
             model m = mlp(7);
             prune(m.at("fc1.weight"));
             return m;
         }},
        {"sparse_int8", [] {
             model m = mlp(8);
             prune(m.at("fc2.weight"));
             quantize(m.at("fc2.weight"), 8, false, 0);
             return m;
         }},
        {"tables", [] {
             model m = mlp(10);
             prune(m.at("fc1.weight"));
             to_table(m.at("fc1.weight"), true, 4);
             to_table(m.at("fc2.weight"), false, 0);
             return m;
         }},
        {"mlp_per_token", [] {
             model m = mlp(11);
             quantize(m.at("fc1.weight"), 8, true, 0);
             m.layers[0].input_quantization = input_quant{1, 0, true};  // dynamic, per token
             m.find_layer("fc2")->input_quantization = input_quant{0.05f, 3};
             return m;
         }},
        {"cnn_int8", [] {
             model m = cnn(9);
             quantize(m.at("conv1.weight"), 8, true, 0);
             m.layers[0].input_quantization = input_quant{0.02f, 128};
             return m;
         }},
    };
    for (const auto& [name, make] : seeds) {
        const model m = make();
        save_model(m, st / (name + ".safetensors"));
        try {
            onnx_import::save_onnx(m, ox / (name + ".onnx"));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: no ONNX seed (%s)\n", name.c_str(), e.what());
        }
    }
    if (argc == 6) {
        const fs::path hc = argv[4], si = argv[5];
        fs::create_directories(hc);
        fs::create_directories(si);
        hf::decoder_config c;
        c.architecture = "LlamaForCausalLM", c.model_type = "llama";
        c.vocab_size = 4096, c.hidden_size = 256, c.intermediate_size = 768, c.layers = 4, c.heads = 8, c.kv_heads = 2, c.head_dim = 32;
        c.max_positions = 512, c.rms_norm_eps = 1e-5, c.rope_theta = 10000, c.bos_token_id = 1, c.eos_token_ids = {2, 3};
        write_file_atomic(hc / "llama.json", hf::write_decoder_config(c));
        c.architecture = "Qwen2ForCausalLM", c.model_type = "qwen2", c.qkv_bias = true, c.tie_word_embeddings = true;
        write_file_atomic(hc / "qwen2.json", hf::write_decoder_config(c));
        c.architecture = "MistralForCausalLM", c.model_type = "mistral", c.qkv_bias = false, c.tie_word_embeddings = false;
        write_file_atomic(hc / "mistral.json", hf::write_decoder_config(c));
        write_file_atomic(si / "two_shards.json",
                          R"({"metadata": {"total_size": 2}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors", )"
                          R"("lm_head.weight": "model-00002-of-00002.safetensors", "model.norm.weight": "model-00001-of-00002.safetensors"}})");
        write_file_atomic(si / "escapes.json", R"({"weight_map": {"a": "../x.safetensors", "b": "sub", "c": "out.safetensors"}})");
    }
    if (argc >= 4) {
        const fs::path tk = argv[3];
        fs::create_directories(tk);
        using fuzz::tokenizer_style;
        for (const auto& [name, style] : {std::pair{"gpt2", tokenizer_style::gpt2}, std::pair{"llama3", tokenizer_style::llama3},
                                          std::pair{"qwen2", tokenizer_style::qwen2}})
            write_file_atomic(tk / (std::string(name) + ".json"), text::write_tokenizer_json(fuzz::sample_tokenizer(style)));
    }
    return 0;
}
