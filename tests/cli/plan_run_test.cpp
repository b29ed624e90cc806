// The planner's promises checked against real runs: measured drops teach the ledger and
// the next plan predicts from them; the report sets predicted against measured retention
// with sampling noise; absolute budgets hold at run time; plans export as JSON and DOT.
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace shrink;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {
std::string learn_recipe(const std::string& budget) {
    return std::string("version: 1\nname: learn\nmodel: ") + SHRINK_REFERENCE_MODEL +
           "\ndata:\n  evaluation: { dataset: fashion-mnist, split: test, samples: 2000 }\n" + budget +
           "stages:\n"
           "  - { id: prune, use: pruner.magnitude, params: { sparsity: 0.5, scope: global } }\n"
           "  - { id: e1, use: evaluator.accuracy }\n"
           "  - { id: q4, use: quantizer.rtn, params: { bits: 4, granularity: per_group } }\n"
           "  - { id: e2, use: evaluator.accuracy }\n";
}
}  // namespace

TEST_CASE("a run teaches the ledger, and the next plan predicts from the measurement", "[model][run]") {
    test::temp_dir dir;
    test::write_text(dir / "r.yaml", learn_recipe("budget: { metric: accuracy, max_drop: 0.05 }\n"));
    const std::string env = "SHRINK_LEDGER=" + (dir / "ledger.json").string();
    const auto before = test::shrink_cli("plan --format json " + (dir / "r.yaml").string(), env);
    REQUIRE(before.code == 0);
    const json p0 = json::parse(before.output);
    CHECK(p0["stages"][0]["expected_drop_source"] == "plugin");

    const auto run = test::shrink_cli("run -q " + (dir / "r.yaml").string() + " --out " + (dir / "run").string(), env);
    INFO(run.output);
    REQUIRE(run.code == 0);
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    const json ledger = json::parse(test::read_text(dir / "ledger.json"));
    CHECK(ledger["entries"].size() == 3);  // the baseline, prune's drop, q4's drop

    const auto after = test::shrink_cli("plan --format json " + (dir / "r.yaml").string(), env);
    const json p1 = json::parse(after.output);
    CHECK_THAT(p1["stages"][0]["expected_drop_source"].get<std::string>(), Contains("ledger (measured"));
    CHECK(p1["baseline"].get<double>() == report["baseline"]["value"].get<double>());
    // The plan now predicts from what the run measured on this (deterministic) path; a
    // measured gain counts as no drop, so the plan never banks on noise.
    double r1 = 0, r2 = 0;
    for (const json& e : report["results"]) (e["stage"] == "e1" ? r1 : r2) = e["retention"].get<double>();
    CHECK(p1["paths"][0]["predicted_retention"].get<double>() == Approx(std::min(r1, 1.0) * std::min(r2 / r1, 1.0)));
}

TEST_CASE("the report sets predicted against measured retention, with a 95% interval", "[model][run]") {
    test::temp_dir dir;
    test::write_text(dir / "r.yaml", learn_recipe("budget: { metric: accuracy, max_drop: 0.05 }\n"));
    const auto run = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    REQUIRE(run.code == 0);
    CHECK_THAT(run.output, Contains("95% interval"));
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    // Each stage's predicted peak memory sits next to the process's measured peak.
    for (const json& s : report["stages"]) {
        CHECK(s["predicted_peak_memory_bytes"].get<uint64_t>() > 0);
        CHECK(s["measured_peak_rss_bytes"].get<uint64_t>() > 0);
    }
    for (const json& e : report["results"]) {
        CHECK(e.contains("predicted_retention"));
        const double lo = e["retention_interval"][0], hi = e["retention_interval"][1], r = e["retention"];
        CHECK(lo < r);
        CHECK(r < hi);
        // Accuracy near 0.89 on 2000 samples: standard error sqrt(p(1-p)/n) ~ 0.007.
        CHECK(e["stderr"].get<double>() == Approx(std::sqrt(e["value"].get<double>() * (1 - e["value"].get<double>()) / 2000)));
        CHECK(e.contains("verdict_within_noise"));
    }
}

TEST_CASE("an absolute budget is enforced on the measured baseline", "[model][run]") {
    test::temp_dir dir;
    // Pruning 90% costs far more than 0.001 accuracy: the plan cannot know (no baseline
    // yet, and the recipe claims no drop), the run measures it and stops the branch.
    test::write_text(dir / "r.yaml", std::string("version: 1\nmodel: ") + SHRINK_REFERENCE_MODEL +
                                         "\ndata:\n  evaluation: { dataset: fashion-mnist, split: test, samples: 1000 }\n"
                                         "budget: { metric: accuracy, max_abs_drop: 0.001 }\nstages:\n"
                                         "  - { id: p, use: pruner.magnitude, params: { sparsity: 0.9 }, expected_drop: 0 }\n"
                                         "  - { id: e, use: evaluator.accuracy }\n");
    const auto plan = test::shrink_cli("plan " + (dir / "r.yaml").string());
    CHECK(plan.code == 0);
    CHECK_THAT(plan.output, Contains("checked when the baseline is measured"));
    const auto run = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    CHECK(run.code == 4);
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    CHECK_FALSE(report["results"][0]["within_budget"].get<bool>());
    CHECK(report["results"][0]["required_retention"].get<double>() > 0.998);
}

TEST_CASE("plan exports JSON and a Graphviz graph with branches", "[cli]") {
    const std::string recipe = std::string(SHRINK_SOURCE_DIR) + "/tests/recipes/valid/02-three-branches.yaml";
    test::temp_dir dir;
    // The corpus recipe names model.safetensors beside it.
    test::write_text(dir / "r.yaml", test::read_text(recipe));
    const auto model = test::shrink_cli("train -q --epochs 1 --train-samples 500 --hidden 16 --out " + (dir / "model.safetensors").string());
    REQUIRE(model.code == 0);
    const auto j = test::shrink_cli("plan --format json " + (dir / "r.yaml").string());
    REQUIRE(j.code == 0);
    const json p = json::parse(j.output);
    CHECK(p["paths"].size() == 3);
    CHECK(p["stages"][0]["id"] == "p");
    CHECK(p["stages"][0]["requires"].empty());
    CHECK(p["stages"][0]["forbids"][0] == "weights_quantized");
    CHECK(p["stages"][0]["peak_memory_bytes"].get<uint64_t>() > 0);
    const auto d = test::shrink_cli("plan --format dot " + (dir / "r.yaml").string());
    REQUIRE(d.code == 0);
    CHECK_THAT(d.output, Contains("digraph \"r\""));
    CHECK_THAT(d.output, Contains("\"p\" -> \"a\""));
    CHECK_THAT(d.output, Contains("\"p\" -> \"b\""));
    CHECK_THAT(d.output, Contains("\"p\" -> \"c\""));
    CHECK(test::shrink_cli("plan --format yaml " + (dir / "r.yaml").string()).code == 2);
}
