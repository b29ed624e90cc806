#include "model/safetensors.hpp"
#include "devices/cuda_probe.hpp"
#include "plan/plan.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {

const registry& first_party() {
    static const registry r = [] {
        registry x;
        x.load_dirs({SHRINK_PLUGIN_DIR});
        return x;
    }();
    return r;
}

const std::string head =
    "version: 1\nmodel: m.safetensors\n"
    "data:\n  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
    "  evaluation: { dataset: fashion-mnist, split: test }\n";

struct planned {
    recipe r;
    plan p;
};

/// Plans a recipe body (appended to `head`); throws what make_plan throws.
const ledger no_ledger{std::filesystem::path()};

planned plan_of(const std::string& body) {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", head + body);
    planned out{parse_recipe((dir / "r.yaml").string()), {}};
    out.p = make_plan(out.r, first_party(), no_ledger);
    out.p.source = &out.r;
    return out;
}

std::string plan_error(const std::string& body) {
    try {
        plan_of(body);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

std::vector<std::string> ids(const planned& x) {
    std::vector<std::string> out;
    for (int i : x.p.order) out.push_back(x.p.stages[size_t(i)].spec->id);
    return out;
}

}  // namespace

TEST_CASE("stages chain by list order, branch with after, and run in topological order", "[plan]") {
    const planned x = plan_of(
        "stages:\n"
        "  - { id: e8, use: evaluator.accuracy, after: q8 }\n"
        "  - { id: p, use: pruner.magnitude, after: [] }\n"
        "  - { id: q8, use: quantizer.rtn, after: p }\n"
        "  - { id: q4, use: quantizer.rtn, after: p, params: { bits: 4, granularity: per_group } }\n"
        "  - { id: e4, use: evaluator.accuracy }\n");
    const auto order = ids(x);
    auto pos = [&](const std::string& id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
    CHECK(pos("p") < pos("q8"));
    CHECK(pos("q8") < pos("e8"));
    CHECK(pos("q4") < pos("e4"));
    CHECK(x.p.paths.size() == 2);
    CHECK(x.p.stages[1].children.size() == 2);
}

TEST_CASE("params are typed, ranged and defaulted from the plugin's declarations", "[plan]") {
    const planned x = plan_of("stages:\n  - { id: q, use: quantizer.rtn, params: { bits: 4, group_size: 32 } }\n");
    const auto& params = x.p.stages[0].params;
    auto find = [&](const char* n) { return *std::find_if(params.begin(), params.end(), [&](auto& p) { return p.name == n; }); };
    CHECK(find("bits").text == "4");
    CHECK_FALSE(find("bits").from_default);
    CHECK(find("group_size").int_value == 32);
    CHECK(find("scheme").text == "symmetric");
    CHECK(find("scheme").from_default);

    CHECK_THAT(plan_error("stages:\n  - { id: q, use: quantizer.rtn, params: { bits: 5 } }\n"),
               Contains("r.yaml:7:50: error: stage 'q' (quantizer.rtn): param 'bits' must be one of 8|4|3|2, got '5'"));
    CHECK_THAT(plan_error("stages:\n  - { id: q, use: quantizer.rtn, params: { group_size: 4 } }\n"),
               Contains("param 'group_size' must be in [8, 4096], got 4"));
    CHECK_THAT(plan_error("stages:\n  - { id: q, use: quantizer.rtn, params: { group_size: 6.5 } }\n"),
               Contains("param 'group_size' must be a decimal integer"));
    CHECK_THAT(plan_error("stages:\n  - { id: p, use: pruner.magnitude, params: { sparsty: 0.5 } }\n"),
               Contains("unknown param 'sparsty'; did you mean 'sparsity'?"));
    CHECK_THAT(plan_error("stages:\n  - { id: p, use: pruner.magnitude, params: { skip_last_layer: yes } }\n"),
               Contains("must be true or false, got 'yes'"));
}

TEST_CASE("unknown stage types and parents get suggestions", "[plan]") {
    CHECK_THAT(plan_error("stages:\n  - { id: q, use: quantizer.rnt }\n"),
               Contains("r.yaml:7:19: error: unknown stage type 'quantizer.rnt'; did you mean 'quantizer.rtn'?"));
    CHECK_THAT(plan_error("stages:\n  - { id: prune, use: pruner.magnitude }\n  - { id: q, use: quantizer.rtn, after: prun }\n"),
               Contains("r.yaml:8:41: error: stage 'q' runs after unknown stage 'prun'; did you mean 'prune'?"));
}

TEST_CASE("cycles are refused and named", "[plan]") {
    CHECK_THAT(plan_error("stages:\n"
                          "  - { id: a, use: pruner.magnitude, after: c }\n"
                          "  - { id: b, use: quantizer.rtn, after: a }\n"
                          "  - { id: c, use: evaluator.accuracy, after: b }\n"),
               Contains("the stages form a cycle: a -> b -> c -> a"));
    CHECK_THAT(plan_error("stages:\n  - { id: a, use: pruner.magnitude, after: a }\n"), Contains("cannot run after itself"));
}

TEST_CASE("a requirement must be provided upstream on the same path", "[plan]") {
    CHECK_THAT(plan_error("stages:\n  - { id: q, use: quantizer.rtn, params: { activation_bits: 8 } }\n"),
               Contains("stage 'q' (quantizer.rtn) requires 'activation_ranges', which no stage before it on its path provides; "
                        "add a calibrator"));
    // The same recipe is fine once a calibrator precedes it...
    CHECK_NOTHROW(plan_of("stages:\n  - { id: c, use: calibrator.minmax }\n"
                          "  - { id: q, use: quantizer.rtn, params: { activation_bits: 8 } }\n"));
    // ...but not when the weights changed in between: calibrate -> prune -> quantize.
    CHECK_THAT(plan_error("stages:\n  - { id: calib, use: calibrator.minmax }\n  - { id: prune, use: pruner.magnitude }\n"
                          "  - { id: q, use: quantizer.rtn, params: { activation_bits: 8 } }\n"),
               Contains("requires 'activation_ranges', but stage 'prune' changed the weights after 'calib' provided it, so it "
                        "is stale; move 'calib' after 'prune'"));
    // A fact on a sibling branch does not count.
    CHECK_THAT(plan_error("stages:\n  - { id: p, use: pruner.magnitude }\n  - { id: c, use: calibrator.minmax }\n"
                          "  - { id: q, use: quantizer.rtn, after: p, params: { activation_bits: 8 } }\n"),
               Contains("requires 'activation_ranges'"));
}

TEST_CASE("data a stage needs must be in the recipe", "[plan]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", "version: 1\nmodel: m.safetensors\nstages:\n  - { id: e, use: evaluator.accuracy }\n");
    const recipe r = parse_recipe((dir / "r.yaml").string());
    CHECK_THROWS_WITH(make_plan(r, first_party(), no_ledger), Contains("requires 'evaluation_data'; add data.evaluation to the recipe"));
}

TEST_CASE("expected drops compound along each path against the budget", "[plan]") {
    const std::string stages =
        "stages:\n"
        "  - { id: p, use: pruner.magnitude, expected_drop: 0.01 }\n"
        "  - { id: q, use: quantizer.rtn, expected_drop: 0.01 }\n"
        "  - { id: e, use: evaluator.accuracy }\n";
    const planned ok = plan_of("budget: { metric: accuracy, max_drop: 0.02 }\n" + stages);
    CHECK(ok.p.paths[0].predicted_retention == Approx(0.99 * 0.99));
    CHECK(ok.p.stages[0].drop_source == "recipe");
    // 1% + 1% sums to the 2% budget but compounds to 1.99%: a budget of 1.98% must fail.
    CHECK_THAT(plan_error("budget: { metric: accuracy, max_drop: 0.0198 }\n" + stages),
               Contains("r.yaml:6:9: error: the path ending at stage 'e': predicted retention 0.9801 is below the budget's 0.9802"));
    // Without expected_drop the plugin's own estimate is used and labelled as such.
    const planned est = plan_of("stages:\n  - { id: q, use: quantizer.rtn, params: { bits: 4, granularity: per_tensor } }\n");
    CHECK(est.p.stages[0].drop_source == "plugin");
    CHECK(est.p.stages[0].expected_drop == Approx(0.08));
}

TEST_CASE("cuda and cuda:N are checked at plan time; auto resolves and says why", "[plan]") {
    // A stage type without a cuda path is refused on cuda wherever the plan runs.
    CHECK_THAT(plan_error("stages:\n  - { id: c, use: calibrator.minmax, device: cuda }\n"),
               Contains("device 'cuda', but this stage type runs only on cpu"));
    const planned x = plan_of("device: auto\nstages:\n  - { id: q, use: quantizer.rtn }\n  - { id: c, use: calibrator.minmax }\n");
    CHECK(x.p.stages[1].device == "cpu");
    CHECK_THAT(format_plan(x.p, true), Contains("stage 'c': device auto chose cpu (calibrator.minmax has no cuda path)"));
    const cuda_status& cuda = probe_cuda();
    if (cuda.devices == 0) {
        // Here (and in CI): no device, so cuda is refused before anything runs, and auto falls back.
        CHECK_THAT(plan_error("stages:\n  - { id: q, use: quantizer.rtn, device: cuda }\n"),
                   Contains("device 'cuda', but no CUDA device is visible (" + cuda.reason + ")"));
        CHECK_THAT(plan_error("device: cuda:1\nstages:\n  - { id: q, use: quantizer.rtn }\n"),
                   Contains("device 'cuda:1', but no CUDA device is visible"));
        CHECK(x.p.stages[0].device == "cpu");
        CHECK_THAT(format_plan(x.p, true), Contains("stage 'q': device auto chose cpu (" + cuda.reason + ")"));
    } else {
        CHECK(plan_of("stages:\n  - { id: q, use: quantizer.rtn, device: cuda }\n").p.stages[0].device == "cuda:0");
        CHECK_THAT(plan_error("device: cuda:" + std::to_string(cuda.devices) + "\nstages:\n  - { id: q, use: quantizer.rtn }\n"),
                   Contains("CUDA device(s) are visible"));
        CHECK(x.p.stages[0].device == "cuda:0");
    }
}

TEST_CASE("stage seeds derive from the recipe seed and the stage id only", "[plan]") {
    const planned a = plan_of("seed: 3\nstages:\n  - { id: p, use: pruner.magnitude }\n");
    const planned b = plan_of("seed: 3\nstages:\n  - { id: x, use: calibrator.minmax }\n  - { id: p, use: pruner.magnitude }\n");
    const planned c = plan_of("seed: 4\nstages:\n  - { id: p, use: pruner.magnitude }\n");
    CHECK(a.p.stages[0].seed == b.p.stages[1].seed);
    CHECK(a.p.stages[0].seed != c.p.stages[0].seed);
}
