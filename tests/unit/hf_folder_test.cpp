// Hugging Face decoder folders in and out: a folder written here by hand (config.json and
// safetensors with transformers' names) imports to the same function; export writes a
// folder that imports back; every mismatch between config.json and the weights is
// refused, naming the file and tensor.
#include "hf/config.hpp"
#include "hf/folder.hpp"
#include "model/dtype.hpp"
#include "model/safetensors.hpp"
#include "model/safetensors_file.hpp"
#include "model/surgery.hpp"
#include "support.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace shrink;
namespace fs = std::filesystem;

namespace {

hf::decoder_config config_of(const decoder_shape& s, const std::string& architecture = "LlamaForCausalLM") {
    hf::decoder_config c;
    c.architecture = architecture;
    c.model_type = architecture == "Qwen2ForCausalLM" ? "qwen2" : "llama";
    c.vocab_size = s.vocab, c.hidden_size = s.hidden, c.intermediate_size = s.intermediate, c.layers = s.layers;
    c.heads = s.heads, c.kv_heads = s.kv_heads, c.head_dim = s.head_dim, c.max_positions = 64;
    c.rms_norm_eps = s.rms_eps, c.rope_theta = s.rope_theta, c.tie_word_embeddings = s.tied, c.qkv_bias = s.qkv_bias;
    c.o_bias = s.o_bias;
    return c;
}

/// A tensor's payload in `dtype` (F32, BF16 or F16), as a checkpoint stores it.
safetensors::out_entry entry_of(const tensor& t, const std::string& dtype) {
    auto values = std::make_shared<std::vector<float>>(t.decode());
    const uint64_t n = values->size(), bytes = dtype == "F32" ? 4 : 2;
    return {dtype, t.shape, n * bytes, [values, dtype](const byte_sink& sink) {
                if (dtype == "F32") return sink(values->data(), values->size() * 4);
                std::vector<uint16_t> half;
                for (float v : *values) half.push_back(dtype == "BF16" ? f32_to_bf16(v) : f32_to_f16(v));
                sink(half.data(), half.size() * 2);
            }};
}

/// Writes the tensors named in `shards` (file -> tensor names) of `m` as a folder.
void write_folder(const fs::path& dir, const model& m, const hf::decoder_config& c, const std::map<std::string, std::vector<std::string>>& shards,
                  const std::string& dtype = "F32", const std::map<std::string, tensor>& extra = {}) {
    fs::create_directories(dir);
    write_file_atomic(dir / "config.json", hf::write_decoder_config(c));
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    for (const auto& [file, names] : shards) {
        std::map<std::string, safetensors::out_entry> entries;
        for (const std::string& name : names) {
            auto it = extra.find(name);
            entries[name] = entry_of(it != extra.end() ? it->second : m.at(name), dtype);
            index["weight_map"][name] = file;
        }
        write_file_atomic_streamed(dir / file, [&](const byte_sink& sink) { safetensors::write(entries, {{"format", "pt"}}, sink); });
    }
    if (shards.size() > 1) write_file_atomic(dir / "model.safetensors.index.json", index.dump());
}

std::vector<std::string> all_names(const decoder_shape& s) {
    std::vector<std::string> names;
    for (const auto& [name, shape] : decoder_tensors(s)) names.push_back(name);
    return names;
}

void refused(const fs::path& dir, const std::string& what) {
    try {
        hf::import_folder(dir);
        FAIL("imported; expected: " << what);
    } catch (const input_error& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
}

const std::vector<int> ids{1, 5, 36, 0, 7, 7, 12, 30, 2};

}  // namespace

TEST_CASE("a Hugging Face folder imports to the same decoder", "[hf]") {
    test::temp_dir dir;
    SECTION("one F32 file, Llama") {
        const decoder_shape s = test::tiny_decoder_shape();
        const model m = test::random_decoder(s, 8);
        write_folder(dir / "llama", m, config_of(s), {{"model.safetensors", all_names(s)}});
        const model back = hf::import_folder(dir / "llama");
        CHECK(test::decoder_logits(back, {ids}) == test::decoder_logits(m, {ids}));
        CHECK(back.find_layer("layers.1.self_attn.q_proj")->op == "linear");
        CHECK(back.info.at("hf.architecture") == "LlamaForCausalLM");
    }
    SECTION("two BF16 shards, Qwen 2 with a tied head and inv_freq buffers") {
        decoder_shape s = test::tiny_decoder_shape();
        s.tied = s.qkv_bias = true;
        const model m = test::random_decoder(s, 9);
        std::vector<std::string> names = all_names(s), first(names.begin(), names.begin() + 10), second(names.begin() + 10, names.end());
        tensor inv_freq;
        inv_freq.shape = {4};
        inv_freq.values = std::vector<float>{1, 0.1f, 0.01f, 0.001f};
        second.push_back("model.layers.0.self_attn.rotary_emb.inv_freq");
        write_folder(dir / "qwen", m, config_of(s, "Qwen2ForCausalLM"),
                     {{"model-00001-of-00002.safetensors", first}, {"model-00002-of-00002.safetensors", second}}, "BF16",
                     {{"model.layers.0.self_attn.rotary_emb.inv_freq", inv_freq}});
        const model back = hf::import_folder(dir / "qwen");
        CHECK(back.at("model.embed_tokens.weight").type == dtype::bf16);
        // The same function as the original with its weights rounded to bf16.
        model rounded = m;
        for (auto& [name, t] : rounded.tensors) {
            std::vector<float> v = t.decode();
            for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
            t.values = std::move(v);
        }
        CHECK(test::decoder_logits(back, {ids}) == test::decoder_logits(rounded, {ids}));
    }
}

TEST_CASE("what config.json and the weights disagree on is refused by file and tensor", "[hf]") {
    test::temp_dir dir;
    const decoder_shape s = test::tiny_decoder_shape();
    const model m = test::random_decoder(s, 10);
    std::vector<std::string> names = all_names(s);

    std::vector<std::string> missing = names;
    missing.erase(std::find(missing.begin(), missing.end(), "model.layers.1.mlp.up_proj.weight"));
    write_folder(dir / "missing", m, config_of(s), {{"model.safetensors", missing}});
    refused(dir / "missing", "tensor 'model.layers.1.mlp.up_proj.weight' [48, 32], which config.json implies, is not in the weights");

    decoder_shape wide = s;
    wide.intermediate = 64;
    write_folder(dir / "shape", m, config_of(wide), {{"model.safetensors", names}});
    refused(dir / "shape", "tensor 'model.layers.0.mlp.down_proj.weight' is [32, 48] but config.json makes it [32, 64]");

    tensor stray;
    stray.shape = {2};
    stray.values = std::vector<float>{1, 2};
    std::vector<std::string> more = names;
    more.push_back("model.layers.0.mlp.extra.weight");
    write_folder(dir / "extra", m, config_of(s), {{"model.safetensors", more}}, "F32", {{"model.layers.0.mlp.extra.weight", stray}});
    refused(dir / "extra", "tensor 'model.layers.0.mlp.extra.weight' is not part of a LlamaForCausalLM as config.json describes it");

    model nan = m;
    float* v = nan.at("model.norm.weight").values.write();
    v[3] = std::nanf("");
    write_folder(dir / "nan", nan, config_of(s), {{"model.safetensors", names}});
    refused(dir / "nan", "tensor 'model.norm.weight': value 3 is not finite");

    write_folder(dir / "f16inf", m, config_of(s), {{"model.safetensors", names}}, "F16",
                 {{"model.norm.weight", [&] {
                       tensor t = m.at("model.norm.weight");
                       std::vector<float> big = t.decode();
                       big[0] = 1e6f;  // past F16's range: infinity
                       t.values = big;
                       return t;
                   }()}});
    refused(dir / "f16inf", "tensor 'model.norm.weight': value 0 is not finite");

    // The index says one shard, the tensor is in the other.
    std::vector<std::string> a(names.begin(), names.begin() + 5), b(names.begin() + 5, names.end());
    write_folder(dir / "moved", m, config_of(s), {{"a.safetensors", a}, {"b.safetensors", b}});
    nlohmann::json index = nlohmann::json::parse(read_file_bounded(dir / "moved" / "model.safetensors.index.json", 1 << 20));
    index["weight_map"][a[0]] = "b.safetensors";
    write_file_atomic(dir / "moved" / "model.safetensors.index.json", index.dump());
    refused(dir / "moved", "tensor '" + a[0] + "' is not where model.safetensors.index.json puts it");
}

TEST_CASE("export writes a folder that imports back; the CLI imports, inspects and exports folders", "[hf][cli]") {
    test::temp_dir dir;
    decoder_shape s = test::tiny_decoder_shape();
    s.qkv_bias = true;
    const model m = test::random_decoder(s, 11);
    write_folder(dir / "src", m, config_of(s, "Qwen2ForCausalLM"), {{"model.safetensors", all_names(s)}});
    test::write_text(dir / "src" / "tokenizer.json", "{}");

    const auto imported = test::shrink_cli("import " + (dir / "src").string() + " --out " + (dir / "lm.safetensors").string());
    INFO(imported.output);
    REQUIRE(imported.code == 0);
    CHECK(imported.output.find("Qwen2ForCausalLM") != std::string::npos);
    const model lm = load_model(dir / "lm.safetensors");
    CHECK(test::decoder_logits(lm, {ids}) == test::decoder_logits(m, {ids}));

    const auto inspected = test::shrink_cli("inspect " + (dir / "src").string());
    CHECK(inspected.code == 0);
    CHECK(inspected.output.find("layers.1.mlp.down_proj  linear") != std::string::npos);

    const auto exported = test::shrink_cli("export " + (dir / "lm.safetensors").string() + " --format hf --out " + (dir / "out").string());
    INFO(exported.output);
    REQUIRE(exported.code == 0);
    CHECK(fs::exists(dir / "out" / "tokenizer.json"));  // from the folder the model came from
    CHECK(hf::read_decoder_config(dir / "out").qkv_bias);
    CHECK(test::decoder_logits(hf::import_folder(dir / "out"), {ids}) == test::decoder_logits(m, {ids}));

    const auto again = test::shrink_cli("export " + (dir / "lm.safetensors").string() + " --format hf --out " + (dir / "out").string());
    CHECK(again.code == 1);
    CHECK(again.output.find("exists") != std::string::npos);
    save_model(test::tiny_model(), dir / "mlp.safetensors");
    const auto mlp = test::shrink_cli("export " + (dir / "mlp.safetensors").string() + " --format hf --out " + (dir / "mlp").string());
    CHECK(mlp.code == 1);
    CHECK(mlp.output.find("did not come from a Hugging Face folder") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "mlp"));
}

TEST_CASE("a recipe takes a Hugging Face folder as its model", "[hf][cli]") {
    test::temp_dir dir;
    const decoder_shape s = test::tiny_decoder_shape();
    const model m = test::random_decoder(s, 13);
    write_folder(dir / "src", m, config_of(s), {{"model.safetensors", all_names(s)}});
    test::write_text(dir / "r.yaml", "version: 1\nname: lm\nmodel: src\nstages:\n  - { id: int8, use: quantizer.rtn }\n");
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " -q");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const model q = load_model(dir / "run" / "models" / "int8.safetensors");
    CHECK(q.at("model.layers.0.self_attn.q_proj.weight").quant->bits == 8);
    CHECK(q.find_layer("layers.0.self_attn") != nullptr);
    // The run records the folder's hash, and replay finds the same bytes.
    CHECK(test::read_text(dir / "run" / "manifest.json").find(hf::folder_sha256(dir / "src")) != std::string::npos);
    const auto replayed = test::shrink_cli("replay " + (dir / "run").string());
    INFO(replayed.output);
    CHECK(replayed.code == 0);

    fs::create_directories(dir / "empty");
    test::write_text(dir / "bad.yaml", "version: 1\nname: lm\nmodel: empty\nstages:\n  - { id: int8, use: quantizer.rtn }\n");
    const auto bad = test::shrink_cli("validate " + (dir / "bad.yaml").string());
    CHECK(bad.code == 1);
    CHECK(bad.output.find("bad.yaml:3:8: error: model folder") != std::string::npos);
    CHECK(bad.output.find("has no config.json") != std::string::npos);
}

TEST_CASE("export multiplies a factorized projection back; a tied head is not factorized", "[hf]") {
    test::temp_dir dir;
    decoder_shape s = test::tiny_decoder_shape();
    const model m = test::random_decoder(s, 14);
    write_folder(dir / "src", m, config_of(s), {{"model.safetensors", all_names(s)}});
    model f = hf::import_folder(dir / "src");
    // Rank-4 factors of up_proj [48, 32]: A [4, 32], B [48, 4].
    rng g(3);
    std::vector<float> a(4 * 32), b(48 * 4);
    for (float& v : a) v = float(g.normal() * 0.3);
    for (float& v : b) v = float(g.normal() * 0.3);
    factorize_layer(f, "layers.1.mlp.up_proj", 4, a.data(), b.data());
    REQUIRE_FALSE(f.tensors.count("model.layers.1.mlp.up_proj.weight"));
    hf::export_folder(f, dir / "out", dir / "src");
    const model back = hf::import_folder(dir / "out");
    const std::vector<float> got = test::decoder_logits(back, {ids}), want = test::decoder_logits(f, {ids});
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - want[i])) / (1 + std::abs(want[i])));
    CHECK(worst < 1e-5);

    decoder_shape tied = s;
    tied.tied = true;
    model t = test::random_decoder(tied, 15);
    std::vector<float> ha(4 * 32), hb(37 * 4);
    CHECK_THROWS_WITH(factorize_layer(t, "lm_head", 4, ha.data(), hb.data()),
                      Catch::Contains("shares its weight 'model.embed_tokens.weight' with 'embed_tokens' (a tied embedding)"));
}
