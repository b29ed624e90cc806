// `shrink run` end to end: the quickstart on the reference model, determinism, failures.
#include "model/safetensors.hpp"
#include "onnx/import.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"
#include "util/files.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace shrink;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

/// Recipe text over a model, with data sections of `samples` evaluation images.
std::string recipe_over(const std::string& model, const std::string& stages, double max_drop = 0.05, int samples = 500) {
    return "version: 1\nname: t\nseed: 3\nmodel: " + model +
           "\ndata:\n  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
           "  evaluation: { dataset: fashion-mnist, split: test, samples: " + std::to_string(samples) +
           " }\nbudget: { metric: accuracy, max_drop: " + std::to_string(max_drop) + " }\nstages:\n" + stages;
}

}  // namespace

TEST_CASE("quickstart: int8 branch >= 3.5x smaller and >= 99% of baseline accuracy, measured", "[model][run]") {
    test::temp_dir dir;
    const auto r = test::shrink_cli(std::string("run ") + SHRINK_SOURCE_DIR + "/pipelines/quickstart.yaml --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.output, Contains("within budget"));
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    const double base_size = report["baseline"]["size_bytes"].get<double>();
    CHECK(report["baseline"]["value"].get<double>() >= 0.87);
    bool saw_int8 = false;
    for (const json& e : report["results"]) {
        CHECK(e["within_budget"].get<bool>());
        if (e["stage"] == "eval8") {
            saw_int8 = true;
            CHECK(base_size / e["size_bytes"].get<double>() >= 3.5);
            CHECK(e["retention"].get<double>() >= 0.99);
            // The size in the report is the size of the file written.
            CHECK(std::filesystem::file_size(dir / "run" / "models" / "int8.safetensors") == e["size_bytes"].get<uint64_t>());
        }
    }
    CHECK(saw_int8);
    const json manifest = json::parse(test::read_text(dir / "run" / "manifest.json"));
    CHECK(manifest["model"]["sha256"] == sha256_file(SHRINK_REFERENCE_MODEL));
    CHECK(manifest["plugins"].size() == 4);
    CHECK(manifest["libraries"]["onednn"].get<std::string>().rfind("2.", 0) == 0);
    CHECK(std::filesystem::exists(dir / "run" / "recipe.yaml"));
    const auto inspect = test::shrink_cli("inspect " + (dir / "run" / "models" / "int4.safetensors").string());
    CHECK_THAT(inspect.output, Contains("int4 sym group 64 sparse"));
}

TEST_CASE("the same recipe, seed and threads give byte-identical models", "[model][run]") {
    test::temp_dir dir;
    const std::string recipe = std::string(SHRINK_SOURCE_DIR) + "/pipelines/quickstart.yaml";
    REQUIRE(test::shrink_cli("run " + recipe + " -q --threads 2 --out " + (dir / "a").string()).code == 0);
    REQUIRE(test::shrink_cli("run " + recipe + " -q --threads 2 --out " + (dir / "b").string()).code == 0);
    for (const char* m : {"int8", "int4"}) {
        const std::string file = std::string("models/") + m + ".safetensors";
        CHECK(sha256_file(dir / "a" / file) == sha256_file(dir / "b" / file));
    }
    // ...and identical metrics.
    const json ra = json::parse(test::read_text(dir / "a" / "report.json")), rb = json::parse(test::read_text(dir / "b" / "report.json"));
    for (size_t i = 0; i < ra["results"].size(); ++i) CHECK(ra["results"][i]["value"] == rb["results"][i]["value"]);
    // A different seed draws different calibration samples, hence other activation scales.
    REQUIRE(test::shrink_cli("run " + recipe + " -q --threads 2 --set seed=99 --out " + (dir / "c").string()).code == 0);
    CHECK(sha256_file(dir / "a/models/int8.safetensors") != sha256_file(dir / "c/models/int8.safetensors"));
}

TEST_CASE("shrink train is deterministic for a seed and thread count", "[run]") {
    test::temp_dir dir;
    const std::string args = " -q --epochs 1 --train-samples 2000 --hidden 32 --threads 2 --out ";
    REQUIRE(test::shrink_cli("train" + args + (dir / "a.safetensors").string()).code == 0);
    REQUIRE(test::shrink_cli("train" + args + (dir / "b.safetensors").string()).code == 0);
    REQUIRE(test::shrink_cli("train --seed 2" + args + (dir / "c.safetensors").string()).code == 0);
    CHECK(sha256_file(dir / "a.safetensors") == sha256_file(dir / "b.safetensors"));
    CHECK(sha256_file(dir / "a.safetensors") != sha256_file(dir / "c.safetensors"));
}

TEST_CASE("a stage that throws fails its branch with the plugin's message (exit 3) while other branches go on", "[run]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", recipe_over("m.safetensors",
                                                 "  - { id: bad, use: pruner.throws, expected_drop: 0 }\n"
                                                 "  - { id: after_bad, use: evaluator.accuracy }\n"
                                                 "  - { id: good, use: pruner.magnitude, after: [], expected_drop: 0 }\n"
                                                 "  - { id: eval_good, use: evaluator.accuracy }\n", 1.0));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string(),
                                    std::string("SHRINK_PLUGIN_PATH=") + SHRINK_FIXTURE_DIR + "/throws");
    INFO(r.output);
    CHECK(r.code == 3);
    CHECK_THAT(r.output, Contains("stage 'bad' (pruner.throws) failed: fixture: deliberate failure in run"));
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    std::map<std::string, std::string> status;
    for (const json& s : report["stages"]) status[s["id"]] = s["status"];
    CHECK(status["bad"] == "failed");
    CHECK(status["after_bad"] == "skipped");
    CHECK(status["eval_good"] == "ok");
}

TEST_CASE("an evaluator may not change weights", "[run]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", recipe_over("m.safetensors", "  - { id: w, use: evaluator.writes }\n", 1.0));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string(),
                                    std::string("SHRINK_PLUGIN_PATH=") + SHRINK_FIXTURE_DIR + "/throws");
    CHECK(r.code == 3);
    CHECK_THAT(r.output, Contains("an evaluator may not change the model"));
}

TEST_CASE("a branch that breaks the measured budget stops, and none within budget exits 4", "[model][run]") {
    test::temp_dir dir;
    test::write_text(dir / "r.yaml", recipe_over(SHRINK_REFERENCE_MODEL,
                                                 "  - { id: p, use: pruner.magnitude, params: { sparsity: 0.95 }, expected_drop: 0 }\n"
                                                 "  - { id: e, use: evaluator.accuracy }\n"
                                                 "  - { id: q, use: quantizer.rtn }\n"
                                                 "  - { id: e2, use: evaluator.accuracy }\n", 0.01));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    CHECK(r.code == 4);
    CHECK_THAT(r.output, Contains("stopping this branch"));
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    CHECK_FALSE(report["results"][0]["within_budget"].get<bool>());
    CHECK(report["stages"][2]["status"] == "skipped");
}

TEST_CASE("factorizer.svd writes a smaller model that still runs", "[model][run]") {
    test::temp_dir dir;
    test::write_text(dir / "r.yaml", recipe_over(SHRINK_REFERENCE_MODEL,
                                                 "  - { id: svd, use: factorizer.svd, params: { energy: 0.9 } }\n"
                                                 "  - { id: e, use: evaluator.accuracy }\n", 0.1, 1000));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const model m = load_model(dir / "run" / "models" / "svd.safetensors");
    CHECK(m.find_layer("fc1.a"));
    CHECK(m.find_layer("fc1.b")->factor_of == "fc1");
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    CHECK(report["results"][0]["size_bytes"].get<double>() < report["baseline"]["size_bytes"].get<double>());
    CHECK(report["results"][0]["retention"].get<double>() > 0.95);
}

TEST_CASE("bad run inputs exit 1 and write nothing", "[run]") {
    test::temp_dir dir;
    test::write_text(dir / "bad.safetensors", std::string(16, '\0'));
    test::write_text(dir / "r.yaml", recipe_over("bad.safetensors", "  - { id: p, use: pruner.magnitude }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Contains("bad.safetensors: error:"));
    CHECK_FALSE(std::filesystem::exists(dir / "run"));
    // An existing, non-empty run directory is not overwritten.
    std::filesystem::create_directories(dir / "used");
    test::write_text(dir / "used" / "report.json", "{}");
    save_model(test::tiny_model(), dir / "m.safetensors");
    test::write_text(dir / "r2.yaml", recipe_over("m.safetensors", "  - { id: p, use: pruner.magnitude }\n"));
    const auto again = test::shrink_cli("run " + (dir / "r2.yaml").string() + " --out " + (dir / "used").string());
    CHECK(again.code == 1);
    CHECK_THAT(again.output, Contains("holds a finished run; choose another --out, --force to replace it"));
    CHECK(test::read_text(dir / "used" / "report.json") == "{}");
}

TEST_CASE("a recipe takes an ONNX model with its preprocessing, and writes ONNX", "[model][run]") {
    test::temp_dir dir;
    REQUIRE(test::shrink_cli(std::string("export ") + SHRINK_REFERENCE_MODEL + " --out " + (dir / "ref.onnx").string()).code == 0);
    const std::string data = "data:\n  evaluation: { dataset: fashion-mnist, split: test, samples: 2000 }\n";
    test::write_text(dir / "native.yaml", std::string("version: 1\nmodel: ") + SHRINK_REFERENCE_MODEL + "\n" + data +
                                              "stages:\n  - { id: q, use: quantizer.rtn }\n  - { id: e, use: evaluator.accuracy }\n");
    test::write_text(dir / "onnx.yaml", "version: 1\nmodel: ref.onnx\n" + data + "  preprocess: { scale: 0.00392156862745098 }\n"
                                        "stages:\n  - { id: q, use: quantizer.rtn }\n  - { id: e, use: evaluator.accuracy }\n"
                                        "output: { format: onnx }\n");
    REQUIRE(test::shrink_cli("run -q " + (dir / "native.yaml").string() + " --out " + (dir / "a").string()).code == 0);
    const auto r = test::shrink_cli("run -q " + (dir / "onnx.yaml").string() + " --out " + (dir / "b").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const json a = json::parse(test::read_text(dir / "a" / "report.json")), b = json::parse(test::read_text(dir / "b" / "report.json"));
    CHECK(a["baseline"]["value"] == b["baseline"]["value"]);
    CHECK(a["results"][0]["value"] == b["results"][0]["value"]);
    CHECK(std::filesystem::exists(dir / "b" / "models" / "q.onnx"));
}

TEST_CASE("the CNN pipeline: the reference CNN from ONNX, pruned and int8, keeps >= 99% of its accuracy", "[model][run][cnn]") {
    test::temp_dir dir;
    const auto r = test::shrink_cli(std::string("run ") + SHRINK_SOURCE_DIR + "/pipelines/cnn.yaml --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    CHECK(report["baseline"]["value"].get<double>() >= 0.89);
    REQUIRE(report["results"].size() == 1);
    const json& e = report["results"][0];
    CHECK(e["retention"].get<double>() >= 0.99);
    CHECK(report["baseline"]["size_bytes"].get<double>() / e["size_bytes"].get<double>() >= 3.5);
    // The convolutions were compressed like the linear layers.
    const model m = load_model(dir / "run" / "models" / "int8.safetensors");
    for (const char* conv : {"conv1", "conv2"}) {
        const layer* l = m.find_layer(conv);
        REQUIRE(l);
        CHECK(l->op == "conv");
        CHECK(m.at(l->weight).encoding_summary().rfind("int8 sym per-channel sparse", 0) == 0);
        CHECK(l->input_quantization);
    }
}

TEST_CASE("factorizer.svd splits a conv into a narrower conv and a 1x1 conv", "[model][run][cnn]") {
    test::temp_dir dir;
    test::write_text(dir / "r.yaml", recipe_over(SHRINK_REFERENCE_CNN,
                                                 "  - { id: svd, use: factorizer.svd, params: { rank: 8, min_features: 8, layers: conv2 } }\n"
                                                 "  - { id: e, use: evaluator.accuracy }\n", 0.5, 1000) +
                                         "output: { format: onnx }\n");
    // An ONNX model takes its preprocessing from the recipe.
    std::string text = test::read_text(dir / "r.yaml");
    text.insert(text.find("budget:"), "  preprocess: { scale: 0.00392156862745098 }\n");
    test::write_text(dir / "r.yaml", text);
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const model m = load_model(dir / "run" / "models" / "svd.safetensors");
    const layer* a = m.find_layer("conv2.a");
    const layer* b = m.find_layer("conv2.b");
    REQUIRE(a);
    REQUIRE(b);
    model composed = load_any_model(SHRINK_REFERENCE_CNN);
    const std::vector<int64_t> whole = composed.at("conv2.weight").shape;  // [out, 16, 3, 3]
    const size_t outs = size_t(whole[0]);
    CHECK(m.at(a->weight).shape == std::vector<int64_t>{8, 16, 3, 3});
    CHECK(a->win.pads == std::array<int64_t, 4>{1, 1, 1, 1});
    CHECK(m.at(b->weight).shape == std::vector<int64_t>{whole[0], 8, 1, 1});
    CHECK(b->win.kernel == std::array<int64_t, 2>{1, 1});
    // The two convs compute what one conv with the product of their weights computes.
    const std::vector<float> wa = m.at(a->weight).decode(), wb = m.at(b->weight).decode();
    float* w = composed.at("conv2.weight").values.write();
    for (size_t o = 0; o < outs; ++o)
        for (size_t k = 0; k < 144; ++k) {
            double sum = 0;
            for (size_t r = 0; r < 8; ++r) sum += double(wb[o * 8 + r]) * wa[r * 144 + k];
            w[o * 144 + k] = float(sum);
        }
    std::vector<float> x(5 * 784);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 256) / 255.0f;
    const std::vector<float> got = engine(m).run(x.data(), 5), want = engine(composed).run(x.data(), 5);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-4));
    // Rank 8 of a trained conv's 144 columns costs accuracy, and the report says how much.
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    CHECK(report["results"][0]["retention"].get<double>() > 0.5);
    CHECK(std::filesystem::exists(dir / "run" / "models" / "svd.onnx"));
}

TEST_CASE("a residual CNN runs the whole pipeline: pruned, calibrated, int8, exported", "[model][run][cnn]") {
    test::temp_dir dir;
    // The reference CNN with a skip: conv2's activations plus the pooled conv1 output it
    // reads, as a ResNet block adds its input back; a 1x1 conv projects the skip's 16
    // channels to conv2's 32 (ResNet's projection shortcut), scaled by 0.05 so that the
    // head, trained without it, still mostly fits.
    model m = load_any_model(SHRINK_REFERENCE_CNN);
    const int64_t outs = m.at("conv2.weight").shape[0];
    tensor& proj = m.tensors["skip_proj.weight"];
    proj.shape = {outs, 16, 1, 1};
    proj.values.assign(size_t(outs * 16), 0.0f);
    for (int64_t o = 0; o < outs; ++o) proj.values.write()[size_t(o * 16 + o % 16)] = 0.05f;
    layer scale = make_layer("skip_proj", "conv", "pool1.out", "skip_proj.out", "skip_proj.weight");
    layer skip = make_layer("skip", "add", "relu2.out", "skip.out");
    skip.more_inputs = {"skip_proj.out"};
    m.layers.insert(m.layers.begin() + long(m.find_layer("relu2") - m.layers.data()) + 1, {scale, skip});
    m.find_layer("pool2")->input = "skip.out";
    save_model(m, dir / "residual.safetensors");
    test::write_text(dir / "r.yaml", recipe_over((dir / "residual.safetensors").string(),
                                                 "  - { id: prune, use: pruner.magnitude, params: { sparsity: 0.5, scope: global } }\n"
                                                 "  - { id: calib, use: calibrator.minmax }\n"
                                                 "  - { id: int8, use: quantizer.rtn, params: { bits: 8, granularity: per_channel, activation_bits: 8 } }\n"
                                                 "  - { id: e, use: evaluator.accuracy }\n", 0.5, 1000) +
                                         "output: { format: onnx }\n");
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const model out = load_model(dir / "run" / "models" / "int8.safetensors");
    CHECK(out.find_layer("skip")->more_inputs == std::vector<std::string>{"skip_proj.out"});
    CHECK(out.at(out.find_layer("conv2")->weight).quant);
    CHECK(out.find_layer("conv2")->input_quantization);
    const json report = json::parse(test::read_text(dir / "run" / "report.json"));
    CHECK(report["baseline"]["value"].get<double>() > 0.7);
    CHECK(report["results"][0]["retention"].get<double>() >= 0.98);
    CHECK(std::filesystem::exists(dir / "run" / "models" / "int8.onnx"));
}

TEST_CASE("per-channel preprocessing feeds each channel its own mean and std, in the declared layout", "[model][run]") {
    test::temp_dir dir;
    // A 3-channel version of the reference MLP that reads only channel 1 (the middle one).
    model three = load_model(SHRINK_REFERENCE_MODEL);
    tensor& w = three.at("fc1.weight");
    const int64_t out = w.shape[0];
    std::vector<float> wide(size_t(out * 3 * 784), 0.0f);
    for (int64_t o = 0; o < out; ++o)
        std::copy_n(w.values.begin() + o * 784, 784, wide.begin() + o * 3 * 784 + 784);
    w.shape = {out, 3 * 784};
    w.values = wide;
    three.input_features = 3 * 784;
    save_model(three, dir / "three.safetensors");
    auto baseline = [&](const std::string& model, const std::string& preprocess) {
        const std::string name = std::to_string(std::hash<std::string>()(model + preprocess));
        test::write_text(dir / (name + ".yaml"), "version: 1\nmodel: " + model +
                                                     "\ndata:\n  evaluation: { dataset: fashion-mnist, split: test, samples: 1000 }\n"
                                                     "  preprocess: " + preprocess + "\nstages:\n  - { id: e, use: evaluator.accuracy }\n");
        const auto r = test::shrink_cli("run -q " + (dir / (name + ".yaml")).string() + " --out " + (dir / name).string());
        INFO(r.output);
        REQUIRE(r.code == 0);
        return json::parse(test::read_text(dir / name / "report.json"))["baseline"]["value"].get<double>();
    };
    const double reference = baseline(SHRINK_REFERENCE_MODEL, "{ scale: 0.00392156862745098 }");
    // Channel 1 gets mean 0 and std 1; the others are multiplied by zero weights.
    CHECK(baseline("three.safetensors", "{ scale: 0.00392156862745098, mean: [5, 0, 7], std: [2, 1, 3] }") == reference);
    CHECK(baseline("three.safetensors", "{ scale: 0.00392156862745098, mean: [0, 0.5, 0] }") < reference - 0.05);
    CHECK(baseline("three.safetensors", "{ scale: 0.00392156862745098, layout: nhwc }") < reference - 0.05);
    // The counts must fit the model.
    test::write_text(dir / "bad.yaml", "version: 1\nmodel: three.safetensors\ndata:\n  evaluation: { dataset: fashion-mnist, split: test, samples: 10 }\n"
                                       "  preprocess: { mean: [0, 0] }\nstages:\n  - { id: e, use: evaluator.accuracy }\n");
    const auto bad = test::shrink_cli("run -q " + (dir / "bad.yaml").string() + " --out " + (dir / "bad").string());
    CHECK(bad.code != 0);
    CHECK_THAT(bad.output, Contains("data.preprocess gives 2 per-channel values; the model takes 3 channel(s)"));
}
