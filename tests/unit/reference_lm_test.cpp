// shrink train --arch llama: a small reference language model trained on the KJV text,
// written as a Hugging Face folder that imports back, whose held-out perplexity
// `shrink perplexity` measures to the same figure, and whose bytes repeat for a seed.
#include "data/kjv.hpp"
#include "hf/folder.hpp"
#include "support.hpp"
#include "text/tokenizer.hpp"
#include "util/files.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <regex>

using namespace shrink;
namespace fs = std::filesystem;

TEST_CASE("shrink train --arch llama writes a folder that imports, measures and repeats", "[train][decoder][cli]") {
    test::temp_dir dir;
    const std::string tiny = " --vocab 300 --hidden 16 --layers 1 --heads 2 --kv-heads 1 --intermediate 32 --seq-len 32 --steps 6 --threads 2";
    const auto r = test::shrink_cli("train --arch llama --out " + (dir / "lm").string() + tiny);
    INFO(r.output);
    REQUIRE(r.code == 0);
    const model m = hf::import_folder(dir / "lm");
    CHECK(m.find_layer("layers.0.self_attn") != nullptr);
    CHECK(m.at("model.embed_tokens.weight").shape == std::vector<int64_t>{300, 16});
    CHECK(m.at("model.layers.0.self_attn.k_proj.weight").shape == std::vector<int64_t>{8, 16});
    const text::tokenizer tok = text::tokenizer::from_file(dir / "lm");
    CHECK(tok.vocab_size() == 300);
    CHECK(tok.id_of("<|endoftext|>").has_value());
    CHECK(fs::exists(dir / "lm" / "tokenizer_config.json"));
    const std::string config = test::read_text(dir / "lm" / "config.json");
    CHECK(config.find("\"max_position_embeddings\": 32") != std::string::npos);

    // The held-out perplexity it reports is what shrink perplexity measures on those windows.
    std::smatch reported;
    REQUIRE(std::regex_search(r.output, reported, std::regex("held-out perplexity ([0-9.]+)")));
    const auto measured = test::shrink_cli("perplexity " + (dir / "lm").string() + " --kjv --seq-len 32 --windows 200");
    INFO(measured.output);
    REQUIRE(measured.code == 0);
    std::smatch value;
    REQUIRE(std::regex_search(measured.output, value, std::regex("^perplexity ([0-9.]+)")));
    CHECK(std::stod(value[1]) == Approx(std::stod(reported[1])).margin(0.006));
    CHECK(std::stod(value[1]) < 300);  // six steps already beat guessing

    // The same seed and threads give the same bytes; another seed does not.
    REQUIRE(test::shrink_cli("train --arch llama -q --out " + (dir / "again").string() + tiny).code == 0);
    CHECK(sha256_file(dir / "again" / "model.safetensors") == sha256_file(dir / "lm" / "model.safetensors"));
    CHECK(sha256_file(dir / "again" / "tokenizer.json") == sha256_file(dir / "lm" / "tokenizer.json"));
    REQUIRE(test::shrink_cli("train --arch llama -q --seed 2 --out " + (dir / "other").string() + tiny).code == 0);
    CHECK(sha256_file(dir / "other" / "model.safetensors") != sha256_file(dir / "lm" / "model.safetensors"));

    const auto exists = test::shrink_cli("train --arch llama --out " + (dir / "lm").string() + tiny);
    CHECK(exists.code == 2);
    CHECK(exists.output.find("exists: train writes a new folder") != std::string::npos);
    const auto heads = test::shrink_cli("train --arch llama --out " + (dir / "x").string() + " --hidden 16 --heads 3");
    CHECK(heads.code == 2);
    CHECK(heads.output.find("--hidden must be --heads times an even head size") != std::string::npos);
}

TEST_CASE("pipelines/llm-quickstart.yaml runs on a language model folder", "[train][decoder][cli]") {
    // The pipeline's own model is the reference LM (minutes to train); a tiny one with the
    // same context runs every stage of it here.
    test::temp_dir dir;
    const auto made = test::shrink_cli("train --arch llama -q --out " + (dir / "lm").string() +
                                       " --vocab 300 --hidden 16 --layers 1 --heads 2 --kv-heads 1 --intermediate 32 --seq-len 128 --steps 2");
    INFO(made.output);
    REQUIRE(made.code == 0);
    const auto r = test::shrink_cli(std::string("run ") + SHRINK_SOURCE_DIR + "/pipelines/llm-quickstart.yaml --set model=" +
                                    (dir / "lm").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    CHECK((r.code == 0 || r.code == 4));  // whether a random model keeps the budget is not the point
    const auto report = nlohmann::json::parse(test::read_text(dir / "run" / "report.json"));
    CHECK(report["baseline"]["metric"] == "perplexity");
    CHECK(report["results"].size() == 3);
    // Every held-out window of the KJV text (every tenth window of 128 of its tokens).
    const text::tokenizer tok = text::tokenizer::from_file(dir / "lm");
    const double windows = double(tok.encode(kjv_text()).size() / 128 / 10);
    for (const auto& e : report["results"]) {
        CHECK(e["extra"]["windows"] == windows);
        CHECK(e["extra"]["tokens"] == windows * 127);
    }
    // The plan's peak memory per stage (text and tokenizer, batches of whole windows) is
    // within 25% of what the run measured.
    test::check_memory_estimates(dir / "run" / "report.json");
}
