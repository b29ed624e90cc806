// `shrink validate` on good and bad recipes: one bad recipe per error class, each with
// its exit code and the line the error points at.
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {

const char* head =
    "version: 1\n"                                                            // 1
    "model: m.safetensors\n"                                                  // 2
    "data:\n"                                                                 // 3
    "  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"  // 4
    "  evaluation: { dataset: fashion-mnist, split: test }\n"                 // 5
    "budget: { metric: accuracy, max_drop: 0.05 }\n";                         // 6

struct bad_case {
    const char* name;
    std::string body;  // from line 7 on
    std::string expect;  // ":LINE:COL: error: ..." fragment
};

}  // namespace

TEST_CASE("validate accepts a good recipe and prints a short plan", "[cli]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", std::string(head) + "stages:\n  - { id: p, use: pruner.magnitude }\n  - { id: e, use: evaluator.accuracy }\n");
    const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
    CHECK(r.code == 0);
    CHECK_THAT(r.output, Contains("r.yaml: ok"));
    CHECK_THAT(r.output, Contains("model -> p (-1.00% plugin) -> e\n    retention 0.9900  budget 0.9500  OK"));
    const auto plan = test::shrink_cli("plan " + (dir / "r.yaml").string());
    CHECK(plan.code == 0);
    CHECK_THAT(plan.output, Contains("params: sparsity=0.5*, scope=per_layer*, skip_last_layer=false*"));
    CHECK_THAT(plan.output, Contains("invalidates: activation_ranges"));
}

TEST_CASE("validate refuses each class of bad recipe at its line, with exit 1", "[cli]") {
    const std::vector<bad_case> cases{
        {"YAML syntax", "stages: [ { id: a\n", ":8:1: error: YAML syntax"},
        {"duplicate key", "stages: []\nstages: []\n", ":8:1: error: duplicate key 'stages' (first at line 7)"},
        {"unknown key", "stagez: []\n", ":7:1: error: unknown key 'stagez' in the recipe; did you mean 'stages'?"},
        {"wrong type", "seed: abc\nstages:\n  - { id: p, use: pruner.magnitude }\n", ":7:7: error: seed must be a decimal integer"},
        {"octal-looking number", "seed: 0755\nstages:\n  - { id: p, use: pruner.magnitude }\n", ":7:7: error: seed must be a decimal integer, got '0755' (leading zeros are not allowed"},
        {"non-finite number", "stages:\n  - { id: p, use: pruner.magnitude, params: { sparsity: .nan } }\n",
         ":8:57: error: stage 'p' (pruner.magnitude): param 'sparsity' must be a finite decimal number"},
        {"param out of range", "stages:\n  - { id: p, use: pruner.magnitude, params: { sparsity: 1.5 } }\n",
         ":8:57: error: stage 'p' (pruner.magnitude): param 'sparsity' must be in [0, 0.99], got 1.5"},
        {"duplicate id", "stages:\n  - { id: p, use: pruner.magnitude }\n  - { id: p, use: evaluator.accuracy }\n",
         ":9:11: error: duplicate stage id 'p'"},
        {"unknown after", "stages:\n  - { id: p, use: pruner.magnitude }\n  - { id: e, use: evaluator.accuracy, after: q }\n",
         ":9:46: error: stage 'e' runs after unknown stage 'q'"},
        {"cycle", "stages:\n  - { id: a, use: pruner.magnitude, after: b }\n  - { id: b, use: evaluator.accuracy, after: a }\n",
         ":8:44: error: the stages form a cycle: a -> b -> a"},
        {"unknown stage type", "stages:\n  - { id: q, use: quantizer.gptq4 }\n", ":8:19: error: unknown stage type 'quantizer.gptq4'"},
        {"requirement not provided", "stages:\n  - { id: q, use: quantizer.rtn, params: { activation_bits: 8 } }\n",
         ":8:19: error: stage 'q' (quantizer.rtn) requires 'activation_ranges'"},
        {"stale calibration", "stages:\n  - { id: c, use: calibrator.minmax }\n  - { id: p, use: pruner.magnitude }\n"
                              "  - { id: q, use: quantizer.rtn, params: { activation_bits: 8 } }\n",
         ":10:19: error: stage 'q' (quantizer.rtn) requires 'activation_ranges', but stage 'p' changed the weights"},
        {"budget", "stages:\n  - { id: p, use: pruner.magnitude, params: { sparsity: 0.9 } }\n  - { id: e, use: evaluator.accuracy }\n",
         ":6:9: error: the path ending at stage 'e': predicted retention"},
    };
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    for (const bad_case& c : cases) {
        test::write_text(dir / "r.yaml", std::string(head) + c.body);
        const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
        INFO(c.name << ":\n" << r.output);
        CHECK(r.code == 1);
        CHECK_THAT(r.output, Contains("r.yaml" + c.expect));
    }
}

TEST_CASE("a missing model file is an invalid recipe", "[cli]") {
    test::temp_dir dir;
    test::write_text(dir / "r.yaml", "version: 1\nmodel: nowhere.safetensors\nstages:\n  - { id: p, use: pruner.magnitude }\n");
    const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Contains("r.yaml:2:8: error: model file"));
}
