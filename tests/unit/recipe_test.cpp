#include "devices/device.hpp"
#include "recipe/recipe.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {

/// Writes a recipe (with a model file beside it) and returns parse_recipe's error text.
std::string recipe_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
    test::temp_dir dir;
    test::write_text(dir / "m.safetensors", "x");
    test::write_text(dir / "r.yaml", text);
    try {
        parse_recipe((dir / "r.yaml").string(), overrides);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

const std::string head = "version: 1\nmodel: m.safetensors\n";

}  // namespace

TEST_CASE("a good recipe parses with marks and resolved paths", "[recipe]") {
    test::temp_dir dir;
    test::write_text(dir / "m.safetensors", "x");
    test::write_text(dir / "r.yaml", head + "seed: 5\nbudget: { metric: accuracy, max_drop: 0.02 }\n"
                                            "data:\n  evaluation: { dataset: fashion-mnist, split: test, samples: 100 }\n"
                                            "stages:\n  - { id: a, use: pruner.magnitude, params: { sparsity: 0.5 } }\n"
                                            "  - { id: b, use: evaluator.accuracy, after: a }\n");
    const recipe r = parse_recipe((dir / "r.yaml").string());
    CHECK(r.seed == 5);
    CHECK(r.model == (dir / "m.safetensors").string());
    CHECK(r.budget.max_drop == 0.02);
    REQUIRE(r.stages.size() == 2);
    CHECK(r.stages[1].after[0].first == "a");
    CHECK(r.stages[0].use_mark.line == 8);
    CHECK(r.evaluation.samples == 100);
}

TEST_CASE("duplicate keys are refused with both lines (yaml-cpp keeps one silently)", "[recipe]") {
    CHECK_THAT(recipe_error(head + "seed: 1\nseed: 2\nstages: []\n"), Contains("r.yaml:4:1: error: duplicate key 'seed' (first at line 3)"));
}

TEST_CASE("anchors and aliases are refused", "[recipe]") {
    CHECK_THAT(recipe_error(head + "x: &a 1\n"), Contains("anchors (&name) are not allowed"));
    CHECK_THAT(recipe_error(head + "stages:\n  - &s { id: a, use: pruner.magnitude }\n  - *s\n"), Contains("not allowed"));
}

TEST_CASE("unknown keys get a suggestion and their position", "[recipe]") {
    CHECK_THAT(recipe_error(head + "budjet: { max_drop: 0.1 }\nstages: []\n"),
               Contains("r.yaml:3:1: error: unknown key 'budjet' in the recipe; did you mean 'budget'?"));
    CHECK_THAT(recipe_error(head + "stages:\n  - { id: a, uses: pruner.magnitude }\n"),
               Contains("unknown key 'uses' in stage; did you mean 'use'?"));
}

TEST_CASE("numbers: octal-looking, non-finite, quoted and out-of-range values are refused", "[recipe]") {
    CHECK_THAT(recipe_error(head + "seed: 017\nstages: []\n"), Contains("r.yaml:3:7: error: seed must be a decimal integer, got '017' (leading zeros"));
    CHECK_THAT(recipe_error(head + "budget: { max_drop: .inf }\nstages: []\n"), Contains("budget.max_drop must be a finite decimal number, got '.inf'"));
    CHECK_THAT(recipe_error(head + "budget: { max_drop: \"0.1\" }\nstages: []\n"), Contains("must be a finite decimal number"));
    CHECK_THAT(recipe_error(head + "budget: { max_drop: 1.5 }\nstages: []\n"), Contains("budget.max_drop must be in [0, 1], got 1.5"));
    CHECK_THAT(recipe_error(head + "stages:\n  - { id: a, use: p.q, expected_drop: nan }\n"), Contains("expected_drop must be a finite"));
}

TEST_CASE("structure: wrong types, missing fields, duplicate ids", "[recipe]") {
    CHECK_THAT(recipe_error("- just\n- a list\n"), Contains("a recipe must be a mapping"));
    CHECK_THAT(recipe_error("model: m.safetensors\nstages: []\n"), Contains("the recipe needs 'version: 1'"));
    CHECK_THAT(recipe_error(head + "stages: { a: 1 }\n"), Contains("stages must be a list, got a mapping"));
    CHECK_THAT(recipe_error(head + "stages:\n  - { use: pruner.magnitude }\n"), Contains("stage needs an 'id'"));
    CHECK_THAT(recipe_error(head + "stages:\n  - { id: a, use: x.y }\n  - { id: a, use: x.y }\n"),
               Contains("r.yaml:5:11: error: duplicate stage id 'a'"));
    CHECK_THAT(recipe_error("version: 1\nmodel: nope.safetensors\nstages: []\n"), Contains("r.yaml:2:8: error: model file"));
    CHECK_THAT(recipe_error(head + "stages: [\n"), Contains("YAML syntax"));
    CHECK_THAT(recipe_error(head + "version: 2\n"), Contains("duplicate key 'version'"));
    CHECK_THAT(recipe_error(head + "name: ../../etc\nstages: []\n"), Contains("r.yaml:3:7: error: name '../../etc' may use only"));
}

TEST_CASE("a data section must point at existing files", "[recipe]") {
    CHECK_THAT(recipe_error(head + "data:\n  evaluation: { dataset: fashion-mnist, split: test, path: nowhere }\nstages: []\n"),
               Contains("r.yaml:4:15: error: Fashion-MNIST test files not found in"));
    CHECK_THAT(recipe_error(head + "data:\n  evaluation: { dataset: mnist, split: test }\nstages: []\n"),
               Contains("unknown dataset 'mnist'; available: fashion-mnist"));
}

TEST_CASE("every problem is reported in one pass", "[recipe]") {
    const std::string e = recipe_error(head + "seed: -1\ndevice: tpu\nstages: []\n");
    CHECK_THAT(e, Contains("seed must be in"));
    CHECK_THAT(e, Contains("device must be cpu, cuda, cuda:N or auto, got 'tpu'"));
    CHECK_THAT(e, Contains("stages is empty"));
}

TEST_CASE("a recipe file must be a bounded regular file", "[recipe]") {
    test::temp_dir dir;
    CHECK_THROWS_WITH(parse_recipe(dir.path().string()), Contains("not a regular file"));
    test::write_text(dir / "big.yaml", std::string(recipe_max_bytes + 1, '#'));
    CHECK_THROWS_WITH(parse_recipe((dir / "big.yaml").string()), Contains("more than the"));
}

TEST_CASE("overrides from --set replace values, by stage id inside lists", "[recipe]") {
    test::temp_dir dir;
    test::write_text(dir / "m.safetensors", "x");
    test::write_text(dir / "r.yaml", head + "seed: 1\nstages:\n  - { id: q, use: quantizer.rtn, params: { bits: 8 } }\n");
    const recipe r = parse_recipe((dir / "r.yaml").string(), {"seed=9", "stages.q.params.bits=4", "budget.max_drop=0.1"});
    CHECK(r.seed == 9);
    CHECK(r.stages[0].params[0].value.text == "4");
    CHECK(r.budget.max_drop == 0.1);
    CHECK_THROWS_AS(parse_recipe((dir / "r.yaml").string(), {"nonsense"}), usage_error);
    CHECK_THROWS_AS(parse_recipe((dir / "r.yaml").string(), {"stages.nope.params.bits=4"}), usage_error);
    CHECK_THAT(recipe_error(head + "seed: 1\nstages: []\n", {"seed=017"}), Contains("--set seed=017: error: seed must be a decimal integer"));
}

TEST_CASE("to_yaml writes a recipe that parses back to the same tree", "[recipe]") {
    const yaml_node a = parse_yaml(head + "name: \"q: x\"\nstages:\n  - { id: a, use: x.y, params: { k: 1 } }\n  - id: b\n    after: [a]\n", "t");
    const yaml_node b = parse_yaml(to_yaml(a), "t2");
    CHECK(to_yaml(a) == to_yaml(b));
    CHECK(b.find("name")->text == "q: x");
}

TEST_CASE("device names: cpu, cuda, cuda:N and auto", "[recipe]") {
    CHECK(parse_device("cpu").value().text() == "cpu");
    CHECK(parse_device("cuda").value().text() == "cuda:0");
    CHECK(parse_device("cuda:12").value().ordinal == 12);
    for (const char* bad : {"auto", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1234", "CUDA"}) CHECK_FALSE(parse_device(bad));
    CHECK(is_device_name("auto"));
    CHECK_FALSE(is_device_name("tpu"));
}
