// Recipes on text: language models calibrated and measured on windows of a text, the
// held-out split measured by evaluator.perplexity exactly as `shrink perplexity` measures
// it, perplexity budgets judged at run time, and text data that cannot fit the model
// refused before anything runs.
#include "hf/folder.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

using namespace shrink;
namespace fs = std::filesystem;

namespace {

const std::string corpus =
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon "
    "the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there "
    "was light. And God saw the light, that it was good: and God divided the light from the darkness.\n";

/// DIR/lm.safetensors with DIR/tokenizer.json, and DIR/text.txt long enough for a few
/// held-out windows of 16 tokens.
void make_lm(const test::temp_dir& dir) {
    test::save_text_decoder(dir.path(), corpus, 21);
    std::string text;
    for (int i = 0; i < 12; ++i) text += corpus;
    test::write_text(dir / "text.txt", text);
}

std::string lm_recipe(const std::string& data, const std::string& stages, const std::string& budget = "") {
    return "version: 1\nname: lm\nmodel: lm.safetensors\ndata:\n" + data + budget + "stages:\n" + stages;
}

const std::string text_data = "  tokenizer: .\n"
                              "  calibration: { dataset: text, path: text.txt, seq_len: 16, samples: 8 }\n"
                              "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\n";

}  // namespace

TEST_CASE("a recipe measures perplexity on the held-out windows as shrink perplexity does", "[text][perplexity][cli]") {
    test::temp_dir dir;
    make_lm(dir);
    // int8 weights with int8 activations from ranges calibrated on text; int4 in groups of 16,
    // which this random model's perplexity takes worse than the 5% the budget allows.
    test::write_text(dir / "r.yaml", lm_recipe(text_data,
                                               "  - { id: calibrate, use: calibrator.minmax }\n"
                                               "  - { id: int8, use: quantizer.rtn, params: { activation_bits: 8 } }\n"
                                               "  - { id: ppl, use: evaluator.perplexity }\n"
                                               "  - { id: int4, use: quantizer.rtn, after: calibrate, params: { bits: 4, granularity: per_group, "
                                               "group_size: 16 } }\n"
                                               "  - { id: ppl-int4, use: evaluator.perplexity }\n",
                                               "budget: { metric: perplexity, max_increase: 0.05 }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    CHECK(r.code == 0);  // one branch within budget (exit 4 is for none)
    const auto report = nlohmann::json::parse(test::read_text(dir / "run" / "report.json"));
    INFO(report.dump(2));

    // The baseline is the figure `shrink perplexity` prints for the same held-out windows.
    const auto cli = test::shrink_cli("perplexity " + (dir / "lm.safetensors").string() + " --tokenizer " + dir.path().string() +
                                      " --file " + (dir / "text.txt").string() + " --seq-len 16");
    INFO(cli.output);
    REQUIRE(cli.code == 0);
    const double base = report["baseline"]["value"].get<double>();
    char expected[64];
    std::snprintf(expected, sizeof expected, "perplexity %.4f +- ", base);
    CHECK(cli.output.find(expected) != std::string::npos);
    CHECK(cli.output.find("over 11 windows of 16 tokens") != std::string::npos);
    CHECK(report["baseline"]["metric"] == "perplexity");

    std::map<std::string, nlohmann::json> by_stage;
    for (const auto& e : report["results"]) by_stage[e["stage"].get<std::string>()] = e;
    for (const auto& e : report["stages"]) by_stage["stage:" + e["id"].get<std::string>()] = e;
    // Calibration saw 8 windows of 16 tokens, drawn from the nine tenths evaluation leaves.
    CHECK(by_stage["stage:calibrate"]["results"]["samples"] == 128.0);
    const auto& int8 = by_stage["ppl"];
    CHECK(int8["extra"]["windows"] == 11.0);
    CHECK(int8["extra"]["tokens"] == 11.0 * 15);
    CHECK(int8["extra"]["nll"].get<double>() == Approx(std::log(int8["value"].get<double>())));
    CHECK(int8["extra"]["bits_per_byte"].get<double>() > 0);
    CHECK(int8["extra"]["perplexity_stderr"].get<double>() > 0);
    CHECK(int8["value"].get<double>() != base);  // int8 activations change the logits ...
    CHECK(int8["value"].get<double>() == Approx(base).epsilon(0.05));  // ... a little
    CHECK(int8["within_budget"] == true);
    // Lower is better: retention is baseline / value, and a rise past 5% misses the budget.
    const auto& int4 = by_stage["ppl-int4"];
    CHECK(int4["value"].get<double>() > base * 1.05);
    CHECK(int4["retention"].get<double>() == Approx(base / int4["value"].get<double>()));
    CHECK(int4["within_budget"] == false);
    CHECK(by_stage["stage:ppl-int4"]["status"] == "over_budget");
}

TEST_CASE("text data that cannot fit the model is refused before anything runs", "[text][cli]") {
    test::temp_dir dir;
    make_lm(dir);
    save_model(test::tiny_model(), dir / "mlp.safetensors");
    auto refused = [&](const std::string& recipe, const std::string& message) {
        test::write_text(dir / "bad.yaml", recipe);
        const auto r = test::shrink_cli("validate " + (dir / "bad.yaml").string());
        INFO(recipe);
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(r.output.find(message) != std::string::npos);
    };
    const std::string ppl = "  - { id: ppl, use: evaluator.perplexity }\n";
    // An evaluator must report the metric the recipe judges (the plugins declare theirs).
    refused(lm_recipe(text_data, "  - { id: acc, use: evaluator.accuracy }\n", "budget: { metric: perplexity, max_increase: 0.05 }\n"),
            "bad.yaml:10:21: error: stage 'acc' (evaluator.accuracy): reports accuracy, not perplexity, the budget's metric (line 8); "
            "use an evaluator of perplexity or a budget on accuracy");
    refused(lm_recipe(text_data, ppl + "  - { id: acc, use: evaluator.accuracy }\n"),
            "stage 'ppl' (evaluator.perplexity): reports perplexity, not accuracy, the metric the report shows without a budget");
    refused(lm_recipe("  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\n", ppl),
            "bad.yaml:3:8: error: text data needs a tokenizer, and the model file does not say which folder it came from");
    refused(lm_recipe("  tokenizer: .\n  evaluation: { dataset: text, path: text.txt, seq_len: 65 }\n", ppl),
            "bad.yaml:6:57: error: data.evaluation.seq_len 65 is above the model's context of 64 tokens");
    refused(lm_recipe("  evaluation: { dataset: fashion-mnist, split: test }\n", "  - { id: acc, use: evaluator.accuracy }\n"),
            "data.evaluation is fashion-mnist images, but the model is a language model");
    refused("version: 1\nname: m\nmodel: mlp.safetensors\ndata:\n  tokenizer: .\n  evaluation: { dataset: kjv }\nstages:\n" + ppl,
            "bad.yaml:6:15: error: data.evaluation is text (kjv), but the model is not a language model");
    refused("version: 1\nname: m\nmodel: mlp.safetensors\ndata:\n  evaluation: { dataset: fashion-mnist, split: test }\nstages:\n" + ppl,
            "stage 'ppl' (evaluator.perplexity) requires 'text_evaluation_data'; data.evaluation is fashion-mnist, not text");
    refused(lm_recipe("  tokenizer: .\n  evaluation: { dataset: text, path: text.txt, split: test }\n", ppl),
            "bad.yaml:6:55: error: data.evaluation.split does not apply to text: evaluation takes the held-out windows");
    refused(lm_recipe("  tokenizer: .\n  evaluation: { dataset: text }\n", ppl), "data.evaluation with dataset 'text' needs 'path'");
    refused(lm_recipe("  tokenizer: .\n  evaluation: { dataset: kjv, path: text.txt }\n", ppl), "data.evaluation.path does not apply to kjv");
    refused(lm_recipe("  tokenizer: .\n  evaluation: { dataset: kvj }\n", ppl), "unknown dataset 'kvj'; available: fashion-mnist, kjv, text; did you mean 'kjv'?");
    refused(lm_recipe("  tokenizer: .\n  evaluation: { dataset: text, path: missing.txt }\n", ppl), "text file '");
    refused("version: 1\nname: m\nmodel: mlp.safetensors\ndata:\n  tokenizer: .\n  evaluation: { dataset: fashion-mnist, split: test, seq_len: 8 }\n"
            "stages:\n  - { id: acc, use: evaluator.accuracy }\n",
            "data.evaluation.seq_len applies to text datasets (kjv, text), not fashion-mnist");
    refused("version: 1\nname: m\nmodel: mlp.safetensors\ndata:\n  tokenizer: .\n  evaluation: { dataset: fashion-mnist, split: test }\n"
            "stages:\n  - { id: acc, use: evaluator.accuracy }\n",
            "data.tokenizer applies to text datasets (kjv, text); this recipe has none");
    test::write_text(dir / "small" / "tokenizer.json", test::read_text(dir / "tokenizer.json"));
    refused(lm_recipe("  tokenizer: nowhere.json\n  evaluation: { dataset: kjv }\n", ppl), "tokenizer '");

    // Too little text for a held-out window: the run says so and measures nothing.
    test::write_text(dir / "short.txt", corpus);
    test::write_text(dir / "short.yaml", lm_recipe("  tokenizer: .\n  evaluation: { dataset: text, path: short.txt, seq_len: 16 }\n", ppl));
    const auto r = test::shrink_cli("run " + (dir / "short.yaml").string() + " --out " + (dir / "short").string());
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK_FALSE(fs::exists(dir / "short" / "report.json"));
    CHECK(r.output.find("leaves none for evaluation (every tenth window): give more text or a shorter seq_len") != std::string::npos);
}

TEST_CASE("language models fine-tune, train quantization-aware and distil into a narrower decoder on text windows", "[text][train][cli]") {
    test::temp_dir dir;
    make_lm(dir);
    test::write_text(dir / "r.yaml",
                     lm_recipe(text_data + "  training: { dataset: text, path: text.txt, seq_len: 16 }\n",
                               "  - { id: prune, use: pruner.magnitude, params: { sparsity: 0.5 } }\n"
                               "  - { id: ppl-pruned, use: evaluator.perplexity }\n"
                               "  - { id: tune, use: finetuner.standard, after: prune, params: { epochs: 8, learning_rate: 0.01 } }\n"
                               "  - { id: ppl-tuned, use: evaluator.perplexity }\n"
                               "  - { id: qat, use: quantizer.qat, after: [], params: { bits: 4, granularity: per_group, group_size: 16, "
                               "epochs: 8, learning_rate: 0.01 } }\n"
                               "  - { id: ppl-qat, use: evaluator.perplexity }\n"
                               "  - { id: kd, use: distiller.kd, after: [], params: { width_scale: 0.5, epochs: 8, learning_rate: 0.01, "
                               "distill_alpha: 0 } }\n"
                               "  - { id: ppl-kd, use: evaluator.perplexity }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto report = nlohmann::json::parse(test::read_text(dir / "run" / "report.json"));
    std::map<std::string, double> ppl;
    for (const auto& e : report["results"]) ppl[e["stage"].get<std::string>()] = e["value"].get<double>();
    const double base = report["baseline"]["value"].get<double>();
    // The text repeats, so training on its windows teaches what the held-out ones hold.
    CHECK(ppl["ppl-tuned"] < 0.5 * ppl["ppl-pruned"]);
    CHECK(ppl["ppl-qat"] < 0.5 * base);
    test::check_memory_estimates(dir / "run" / "report.json");  // training batches, the teacher's among them
    const model tuned = load_model(dir / "run" / "models" / "tune.safetensors");
    CHECK(tuned.at("model.layers.0.mlp.up_proj.weight").sparse());  // the mask held through training
    const model qat = load_model(dir / "run" / "models" / "qat.safetensors");
    CHECK(qat.at("model.layers.1.self_attn.q_proj.weight").quant->bits == 4);
    // The student: each MLP at half its channels, trained on the windows; it exports as a
    // folder whose config.json says so, and imports back.
    CHECK(ppl["ppl-kd"] < 0.5 * base);
    const model student = load_model(dir / "run" / "models" / "kd.safetensors");
    CHECK(student.at("model.layers.0.mlp.up_proj.weight").shape == std::vector<int64_t>{24, 32});
    CHECK(student.at("model.layers.0.mlp.down_proj.weight").shape == std::vector<int64_t>{32, 24});
    CHECK(student.at("model.layers.0.self_attn.q_proj.weight").shape == std::vector<int64_t>{32, 32});
    const auto exported = test::shrink_cli("export " + (dir / "run" / "models" / "kd.safetensors").string() + " --format hf --out " +
                                           (dir / "student").string());
    INFO(exported.output);
    REQUIRE(exported.code == 0);
    CHECK(test::read_text(dir / "student" / "config.json").find("\"intermediate_size\": 24") != std::string::npos);
    CHECK(hf::import_folder(dir / "student").at("model.layers.1.mlp.gate_proj.weight").shape == std::vector<int64_t>{24, 32});
}
