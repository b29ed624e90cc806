// Hugging Face model folders: config.json for Llama, Mistral and Qwen 2 read strictly,
// and the shard index kept inside the folder.
#include "hf/config.hpp"
#include "hf/shard_index.hpp"
#include "support.hpp"
#include "util/errors.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace shrink;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// As Meta's Llama 3.1 8B ships it, rope scaling left out.
json llama3() {
    return json::parse(R"({"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
        "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_scaling": null,
        "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256})");
}

// As Qwen 2.5 0.5B ships it.
json qwen2() {
    return json::parse(R"({"architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151643,
        "hidden_act": "silu", "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
        "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
        "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false, "vocab_size": 151936})");
}

hf::decoder_config parse(const json& j) { return hf::parse_decoder_config(j.dump(), "config.json"); }

void refused(const json& j, const std::string& what) {
    try {
        parse(j);
        FAIL("accepted; expected: " << what);
    } catch (const input_error& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).rfind("config.json: ", 0) == 0);
        CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("config.json: Llama, Qwen 2 and Mistral as released", "[hf]") {
    const hf::decoder_config l = parse(llama3());
    CHECK(l.architecture == "LlamaForCausalLM");
    CHECK(l.head_dim == 128);  // derived: 4096 / 32
    CHECK(l.kv_heads == 8);
    CHECK(l.rope_theta == 500000.0);
    CHECK(l.rms_norm_eps == 1e-5);
    CHECK_FALSE(l.qkv_bias);
    CHECK_FALSE(l.tie_word_embeddings);
    CHECK(l.eos_token_ids == std::vector<int64_t>{128001, 128008, 128009});
    CHECK(l.bos_token_id == 128000);

    const hf::decoder_config q = parse(qwen2());
    CHECK(q.qkv_bias);  // Qwen 2 always has q/k/v biases, and no o bias
    CHECK_FALSE(q.o_bias);
    CHECK(q.tie_word_embeddings);
    CHECK(q.head_dim == 64);
    CHECK(q.eos_token_ids == std::vector<int64_t>{151643});

    json m = llama3();
    m["architectures"] = {"MistralForCausalLM"};
    m["model_type"] = "mistral";
    m["sliding_window"] = nullptr;
    m["head_dim"] = 96;  // given, not derived
    CHECK(parse(m).head_dim == 96);
    m["sliding_window"] = 4096;
    refused(m, "sliding_window: 4096 is shorter than max_position_embeddings (131072): sliding-window attention is not supported");

    // transformers 5 writes rope_parameters.
    json t5 = llama3();
    t5.erase("rope_theta");
    t5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
    CHECK(parse(t5).rope_theta == 10000.0);

    // Llama with attention_bias: q, k, v and o biased.
    json b = llama3();
    b["attention_bias"] = true;
    CHECK(parse(b).qkv_bias);
    CHECK(parse(b).o_bias);
}

TEST_CASE("config.json: what would compute another function is refused by key", "[hf]") {
    json j = llama3();
    j["architectures"] = {"Gemma2ForCausalLM"};
    refused(j, "architectures[0]: 'Gemma2ForCausalLM' is not supported (shrink reads LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
    j = llama3();
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    refused(j, "rope_scaling.rope_type: 'llama3' is not supported");
    j = llama3();
    j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 10000.0}};
    refused(j, "rope_parameters.rope_type: 'yarn' is not supported");
    j = llama3();
    j["rope_scaling"] = {{"factor", 2.0}};
    refused(j, "rope_scaling.factor: is not supported");
    j = llama3();
    j["num_key_value_heads"] = 5;
    refused(j, "num_key_value_heads: must divide num_attention_heads (32), got 5");
    j = llama3();
    j["num_key_value_heads"] = 0;  // found by fuzzing: a division by zero
    refused(j, "num_key_value_heads: 0 is outside 1..32");
    j = llama3();
    j["hidden_act"] = "gelu";
    refused(j, "hidden_act: 'gelu' is not supported");
    j = llama3();
    j["head_dim"] = 63;
    refused(j, "head_dim: 63 is odd");
    j = llama3();
    j["vocab_size"] = 1 << 30;
    refused(j, "vocab_size: 1073741824 is outside 1..16777215");
    j = llama3();
    j.erase("hidden_size");
    refused(j, "hidden_size: missing");
    j = llama3();
    j["model_type"] = "qwen2";
    refused(j, "model_type: 'qwen2' does not match LlamaForCausalLM ('llama')");
    j = llama3();
    j["rms_norm_eps"] = "small";
    refused(j, "rms_norm_eps: must be a number");
    CHECK_THROWS_WITH(hf::parse_decoder_config("{\"architectures\": [", "config.json"), Catch::StartsWith("config.json: not valid JSON"));
}

TEST_CASE("config.json written by shrink reads back the same", "[hf]") {
    for (const json& j : {llama3(), qwen2()}) {
        const hf::decoder_config a = parse(j);
        const hf::decoder_config b = hf::parse_decoder_config(hf::write_decoder_config(a), "config.json");
        CHECK(b.architecture == a.architecture);
        CHECK(b.head_dim == a.head_dim);
        CHECK(b.kv_heads == a.kv_heads);
        CHECK(b.rope_theta == a.rope_theta);
        CHECK(b.qkv_bias == a.qkv_bias);
        CHECK(b.o_bias == a.o_bias);
        CHECK(b.tie_word_embeddings == a.tie_word_embeddings);
        CHECK(b.eos_token_ids == a.eos_token_ids);
    }
}

TEST_CASE("shards stay inside the folder", "[hf]") {
    test::temp_dir dir;
    const fs::path folder = dir / "model";
    fs::create_directories(folder);
    test::write_text(folder / "model-00001-of-00002.safetensors", "x");
    test::write_text(folder / "model-00002-of-00002.safetensors", "y");
    auto index = [&](const json& map) {
        test::write_text(folder / "model.safetensors.index.json", json{{"metadata", {{"total_size", 2}}}, {"weight_map", map}}.dump());
    };
    auto refused_index = [&](const json& map, const std::string& what) {
        index(map);
        try {
            hf::find_weight_files(folder);
            FAIL("accepted; expected: " << what);
        } catch (const input_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find("model.safetensors.index.json: ") != std::string::npos);
            CHECK(std::string(e.what()).find(what) != std::string::npos);
        }
    };

    index({{"a.weight", "model-00001-of-00002.safetensors"}, {"b.weight", "model-00002-of-00002.safetensors"},
           {"c.weight", "model-00001-of-00002.safetensors"}});
    const hf::weight_files w = hf::find_weight_files(folder);
    CHECK(w.files.size() == 2);
    CHECK(w.file_of.at("c.weight") == folder / "model-00001-of-00002.safetensors");

    test::write_text(dir / "outside.safetensors", "z");
    refused_index({{"a.weight", "../outside.safetensors"}}, "weight_map[\"a.weight\"]: '../outside.safetensors' must not leave the folder");
    refused_index({{"a.weight", (dir / "outside.safetensors").string()}}, "must be a file name relative to the folder");
    refused_index({{"a.weight", "model-00003-of-00002.safetensors"}}, "shard 'model-00003-of-00002.safetensors' is missing");
    fs::create_symlink(dir / "outside.safetensors", folder / "link.safetensors");
    refused_index({{"a.weight", "link.safetensors"}}, "shard 'link.safetensors' links outside the folder");
    fs::create_symlink(folder / "model-00002-of-00002.safetensors", folder / "inside.safetensors");
    index({{"a.weight", "inside.safetensors"}});
    CHECK(hf::find_weight_files(folder).files.size() == 1);
    fs::create_directories(folder / "dir.safetensors");
    refused_index({{"a.weight", "dir.safetensors"}}, "shard 'dir.safetensors' is not a regular file");
    refused_index(json::object(), "weight_map: must be a non-empty object");

    fs::remove(folder / "model.safetensors.index.json");
    CHECK_THROWS_WITH(hf::find_weight_files(folder), Catch::Contains("no model.safetensors or model.safetensors.index.json"));
    test::write_text(folder / "model.safetensors", "w");
    CHECK(hf::find_weight_files(folder).files == std::vector<fs::path>{folder / "model.safetensors"});
}
