// The first-party stages on `device: cuda` against `device: cpu`, end to end through the
// CLI on the reference MLP: RTN (every mode) and magnitude pruning write byte-identical
// models; SVD picks the same ranks and keeps the accuracy; the evaluator measures the same
// accuracy; and `device: auto` chooses the GPU and says so.
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <map>

using namespace shrink;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

std::string recipe(const std::string& device, const std::string& stages) {
    return std::string("version: 1\nname: t\nseed: 5\nmodel: ") + SHRINK_REFERENCE_MODEL +
           "\ndata:\n  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
           "  evaluation: { dataset: fashion-mnist, split: test }\n"
           "device: " + device + "\nbudget: { metric: accuracy, max_drop: 0.9 }\nstages:\n" + stages;
}

/// Runs the stages on `device`; returns the report, with the run in dir/<device>.
json run_on(const test::temp_dir& dir, const std::string& device, const std::string& stages) {
    const std::string name = device == "cuda" ? "gpu" : device;
    test::write_text(dir / (name + ".yaml"), recipe(device, stages));
    const auto r = test::shrink_cli("run " + (dir / (name + ".yaml")).string() + " -q --threads 2 --out " + (dir / name).string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    return json::parse(test::read_text(dir / name / "report.json"));
}

double result_of(const json& report, const std::string& stage, const std::string& key) {
    for (const json& r : report["results"])
        if (r["stage"] == stage) return r["extra"].at(key).get<double>();
    FAIL("no " << key << " from " << stage);
    return 0;
}

}  // namespace

TEST_CASE("quantizer.rtn and pruner.magnitude on cuda write the CPU's model byte for byte", "[cuda][run][model]") {
    std::string stages = "  - { id: prune, use: pruner.magnitude, params: { sparsity: 0.6, scope: global } }\n";
    int n = 0;
    for (const char* bits : {"4", "8"})
        for (const char* scheme : {"symmetric", "asymmetric"})
            for (const char* gran : {"per_tensor", "per_channel", "per_group"}) {
                const std::string id = std::string("q").append(std::to_string(++n));
                stages += "  - { id: " + id + ", use: quantizer.rtn, after: prune, params: { bits: " + bits + ", scheme: " + scheme +
                          ", granularity: " + gran + ", group_size: 32 } }\n";
            }
    test::temp_dir dir;
    run_on(dir, "cpu", stages);
    run_on(dir, "cuda", stages);
    for (int i = 1; i <= n; ++i) {
        const std::string file = std::string("models/q").append(std::to_string(i)).append(".safetensors");
        INFO(file);
        CHECK(test::read_text(dir / "cpu" / file) == test::read_text(dir / "gpu" / file));
    }
}

TEST_CASE("factorizer.svd on cuda picks the CPU's ranks and keeps its accuracy", "[cuda][run][model]") {
    const std::string stages =
        "  - { id: svd, use: factorizer.svd, params: { energy: 0.9 } }\n  - { id: eval, use: evaluator.accuracy }\n";
    test::temp_dir dir;
    const json cpu = run_on(dir, "cpu", stages), gpu = run_on(dir, "cuda", stages);
    CHECK(result_of(gpu, "eval", "size_bytes") == result_of(cpu, "eval", "size_bytes"));
    CHECK(std::fabs(result_of(gpu, "eval", "accuracy") - result_of(cpu, "eval", "accuracy")) <= 0.002);
}

TEST_CASE("evaluator.accuracy on cuda measures the CPU's accuracy, and auto picks the GPU", "[cuda][run][model]") {
    const std::string stages = "  - { id: q, use: quantizer.rtn, params: { bits: 4, granularity: per_group } }\n"
                               "  - { id: eval, use: evaluator.accuracy }\n";
    test::temp_dir dir;
    const json cpu = run_on(dir, "cpu", stages), gpu = run_on(dir, "cuda", stages);
    CHECK(std::fabs(result_of(gpu, "eval", "accuracy") - result_of(cpu, "eval", "accuracy")) <= 0.0002);  // two of 10,000 samples
    test::write_text(dir / "auto.yaml", recipe("auto", stages));
    const auto plan = test::shrink_cli("plan " + (dir / "auto.yaml").string());
    INFO(plan.output);
    CHECK(plan.code == 0);
    CHECK_THAT(plan.output, Contains("device auto chose cuda:0"));
    const auto far = test::shrink_cli("plan " + (dir / "auto.yaml").string(), "SHRINK_CUDA_DEVICES=0");
    CHECK_THAT(far.output, Contains("device auto chose cpu (SHRINK_CUDA_DEVICES=0)"));
    test::write_text(dir / "nine.yaml", recipe("cuda:9", stages));
    const auto nine = test::shrink_cli("plan " + (dir / "nine.yaml").string());
    CHECK(nine.code == 1);
    CHECK_THAT(nine.output, Contains("device 'cuda:9', but only"));
}

TEST_CASE("evaluator.perplexity on cuda measures the CPU's perplexity of a language model", "[cuda][run][decoder]") {
    // A random decoder with a tokenizer trained on a short text (the device machine has no
    // Debian packages: no KJV text there), RTN int4 in groups of 8 on every linear.
    test::temp_dir dir;
    const std::string corpus = "In the beginning God created the heaven and the earth. And the earth was without form, and void; "
                               "and darkness was upon the face of the deep.\n";
    test::save_text_decoder(dir.path(), corpus, 9);
    std::string text;
    for (int i = 0; i < 40; ++i) text += corpus;
    test::write_text(dir / "text.txt", text);
    std::map<std::string, double> ppl;
    for (const std::string device : {"cpu", "cuda"}) {
        test::write_text(dir / (device + ".yaml"), "version: 1\nname: t\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
                                                   "  evaluation: { dataset: text, path: text.txt, seq_len: 32 }\n"
                                                   "device: " + device + "\nstages:\n"
                                                   "  - { id: q, use: quantizer.rtn, params: { bits: 4, granularity: per_group, group_size: 8 } }\n"
                                                   "  - { id: ppl, use: evaluator.perplexity }\n");
        const auto r = test::shrink_cli("run " + (dir / (device + ".yaml")).string() + " -q --out " + (dir / device).string());
        INFO(r.output);
        REQUIRE(r.code == 0);
        ppl[device] = result_of(json::parse(test::read_text(dir / device / "report.json")), "ppl", "perplexity");
    }
    CHECK(std::fabs(ppl["cuda"] / ppl["cpu"] - 1) < 1e-4);
}
