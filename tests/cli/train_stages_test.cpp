// The training stages end to end on the reference MLP: distiller.kd, finetuner.standard,
// quantizer.qat, and the plans the planner refuses for them.
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

using namespace shrink;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

std::string recipe_with(const std::string& stages, bool training = true, int train_samples = 3000) {
    return std::string("version: 1\nname: t\nseed: 5\nmodel: ") + SHRINK_REFERENCE_MODEL +
           "\ndata:\n" + (training ? "  training: { dataset: fashion-mnist, split: train, samples: " + std::to_string(train_samples) + " }\n" : "") +
           "  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
           "  evaluation: { dataset: fashion-mnist, split: test, samples: 1000 }\n"
           "budget: { metric: accuracy, max_drop: 0.5 }\nstages:\n" + stages;
}

json run_recipe(const test::temp_dir& dir, const std::string& text) {
    test::write_text(dir / "r.yaml", text);
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " -q --threads 2 --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    return json::parse(test::read_text(dir / "run" / "report.json"));
}

double accuracy_of(const json& report, const std::string& evaluator) {
    for (const json& r : report["results"])
        if (r["stage"] == evaluator) return r["value"].get<double>();
    FAIL("no result from " << evaluator);
    return 0;
}

}  // namespace

TEST_CASE("distiller.kd makes a narrower student that learns, and keeps the teacher for fine-tuning", "[model][run][train]") {
    test::temp_dir dir;
    const json report = run_recipe(dir, recipe_with(
        "  - { id: kd, use: distiller.kd, params: { width_scale: 0.25, epochs: 2, learning_rate: 0.005 } }\n"
        "  - { id: eval_kd, use: evaluator.accuracy }\n"
        "  - { id: ft, use: finetuner.standard, after: kd, params: { distill_alpha: 0.5 } }\n"
        "  - { id: eval_ft, use: evaluator.accuracy }\n"));
    CHECK(accuracy_of(report, "eval_kd") > 0.7);
    CHECK(accuracy_of(report, "eval_ft") > 0.7);
    const model student = load_model(dir / "run" / "models" / "ft.safetensors");
    CHECK(student.at("fc1.weight").shape == std::vector<int64_t>{64, 784});
    CHECK(student.at("fc3.weight").shape == std::vector<int64_t>{10, 32});
    // The distiller's checkpoint carries the teacher it kept: the reference model, unchanged.
    bool found = false;
    for (const auto& entry : std::filesystem::directory_iterator(dir / "run" / "checkpoints"))
        if (std::filesystem::exists(entry.path() / "teacher.safetensors")) {
            found = true;
            const model teacher = load_model(entry.path() / "teacher.safetensors");
            CHECK(teacher.at("fc1.weight").values == load_model(SHRINK_REFERENCE_MODEL).at("fc1.weight").values);
        }
    CHECK(found);
}

TEST_CASE("distiller.kd matches named layers' outputs where the widths agree, and says where they do not", "[model][run][train]") {
    test::temp_dir dir;
    const json report = run_recipe(dir, recipe_with("  - { id: kd, use: distiller.kd, params: { width_scale: 1, epochs: 1, "
                                                    "samples: 1000, match_layers: [fc1, fc2], match_weight: 0.5 } }\n"
                                                    "  - { id: e, use: evaluator.accuracy }\n"));
    CHECK(accuracy_of(report, "e") > 0.5);
    test::write_text(dir / "r.yaml", recipe_with("  - { id: kd, use: distiller.kd, params: { width_scale: 0.5, epochs: 1, "
                                                 "samples: 500, match_layers: [fc1] } }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " -q --out " + (dir / "run2").string());
    CHECK(r.code == 3);
    CHECK_THAT(r.output, Contains("stage 'kd' (distiller.kd) failed") && Contains("hidden pair 'fc1.out:fc1.out'") &&
                             Contains("128 floats per sample, the teacher's 256"));
}

TEST_CASE("finetuner.standard recovers pruned accuracy with the masks held", "[model][run][train]") {
    test::temp_dir dir;
    const json report = run_recipe(dir, recipe_with(
        "  - { id: prune, use: pruner.magnitude, params: { sparsity: 0.9 } }\n"
        "  - { id: eval_prune, use: evaluator.accuracy }\n"
        "  - { id: ft, use: finetuner.standard, after: prune, params: { epochs: 1, optimizer: sgd, learning_rate: 0.02 } }\n"
        "  - { id: eval_ft, use: evaluator.accuracy }\n"));
    CHECK(accuracy_of(report, "eval_ft") > accuracy_of(report, "eval_prune") + 0.01);
    const model pruned = load_model(dir / "run" / "models" / "ft.safetensors");
    for (const char* w : {"fc1.weight", "fc2.weight", "fc3.weight"}) {
        const tensor& t = pruned.at(w);
        REQUIRE(t.sparse());
        CHECK(double(t.kept_count()) / double(t.element_count()) == Approx(0.1).margin(0.01));
        for (size_t i = 0; i < t.mask.size(); ++i)
            if (!t.mask[i]) REQUIRE(t.values[i] == 0.0f);
    }
}

TEST_CASE("quantizer.qat trains through fake quantization and stores RTN's encodings", "[model][run][train]") {
    test::temp_dir dir;
    const json report = run_recipe(dir, recipe_with(
        "  - { id: qat, use: quantizer.qat, params: { bits: 4, granularity: per_channel, epochs: 1 } }\n"
        "  - { id: eval, use: evaluator.accuracy }\n"));
    CHECK(accuracy_of(report, "eval") > 0.8);
    const model q = load_model(dir / "run" / "models" / "qat.safetensors");
    for (const char* w : {"fc1.weight", "fc2.weight", "fc3.weight"})
        CHECK(q.at(w).encoding_summary().rfind("int4 sym per-channel", 0) == 0);
}

TEST_CASE("the planner refuses a distiller without a teacher and a fine-tuner without training data", "[model][run][train]") {
    test::temp_dir dir;
    SECTION("a distiller after quantization: its teacher would be quantized") {
        test::write_text(dir / "r.yaml", recipe_with("  - { id: q, use: quantizer.rtn }\n"
                                                     "  - { id: kd, use: distiller.kd }\n"));
        const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
        CHECK(r.code == 1);
        CHECK_THAT(r.output, Contains("stage 'kd' (distiller.kd) requires 'teacher'") && Contains("Distil before quantizing") &&
                                 Contains("r.yaml:"));
    }
    SECTION("a fine-tuner with no data.training") {
        test::write_text(dir / "r.yaml", recipe_with("  - { id: ft, use: finetuner.standard }\n", false));
        const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
        CHECK(r.code == 1);
        CHECK_THAT(r.output, Contains("requires 'training_data'") && Contains("add data.training"));
    }
    SECTION("quantization-aware training with no data.training") {
        test::write_text(dir / "r.yaml", recipe_with("  - { id: q, use: quantizer.qat }\n", false));
        CHECK(test::shrink_cli("validate " + (dir / "r.yaml").string()).code == 1);
    }
    SECTION("training on the split the evaluation measures") {
        std::string text = recipe_with("  - { id: ft, use: finetuner.standard }\n");
        text.replace(text.find("training: { dataset: fashion-mnist, split: train"), 48,
                     "training: { dataset: fashion-mnist, split: test");
        test::write_text(dir / "r.yaml", text);
        const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
        CHECK(r.code == 1);
        CHECK_THAT(r.output, Contains("data.training uses the 'test' split"));
    }
    SECTION("a fine-tuner after quantization") {
        test::write_text(dir / "r.yaml", recipe_with("  - { id: q, use: quantizer.rtn }\n"
                                                     "  - { id: ft, use: finetuner.standard }\n"));
        const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
        CHECK(r.code == 1);
        CHECK_THAT(r.output, Contains("cannot work on quantized weights"));
    }
    SECTION("what follows a distiller works on its float student: it may be pruned and quantized") {
        test::write_text(dir / "r.yaml", recipe_with("  - { id: kd, use: distiller.kd }\n"
                                                     "  - { id: q, use: quantizer.rtn }\n"
                                                     "  - { id: kd2, use: distiller.kd, after: [] }\n"
                                                     "  - { id: prune, use: pruner.magnitude }\n"
                                                     "  - { id: q2, use: quantizer.rtn }\n"));
        const auto r = test::shrink_cli("validate " + (dir / "r.yaml").string());
        INFO(r.output);
        CHECK(r.code == 0);
    }
}
