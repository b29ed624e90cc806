// Reproducibility as a researcher uses it: the stage cache, replay, diff, verify, and
// what the manifest records.
#include "model/safetensors.hpp"
#include "support.hpp"
#include "util/files.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace shrink;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {
const std::string quickstart = std::string(SHRINK_SOURCE_DIR) + "/pipelines/quickstart.yaml";
}

TEST_CASE("the stage cache reuses unchanged stages and recomputes from the first edited one", "[model][run]") {
    test::temp_dir dir;
    const std::string env = "SHRINK_CACHE=" + (dir / "cache").string();
    REQUIRE(test::shrink_cli("run " + quickstart + " --threads 2 --out " + (dir / "a").string(), env).code == 0);
    const auto b = test::shrink_cli("run " + quickstart + " --threads 2 --set stages.int4.params.group_size=32 --out " + (dir / "b").string(), env);
    INFO(b.output);
    REQUIRE(b.code == 0);
    for (const char* reused : {"prune", "calib", "int8", "eval8"})
        CHECK_THAT(b.output, Contains(std::string("stage ") + reused + " (") && Contains("reused from the stage cache"));
    CHECK_THAT(b.output, Contains("stage int4 (quantizer.rtn)\n"));
    CHECK_THAT(b.output, Contains("baseline: accuracy of the input model with evaluator.accuracy, reused from the stage cache"));
    CHECK_THAT(b.output, Contains("stage eval4 (evaluator.accuracy)\n"));
    // Reused stages give the same bytes as computed ones.
    CHECK(sha256_file(dir / "a/models/int8.safetensors") == sha256_file(dir / "b/models/int8.safetensors"));
    const json manifest = json::parse(test::read_text(dir / "b" / "manifest.json"));
    std::map<std::string, std::string> source;
    for (const json& s : manifest["stages"]) source[s["id"]] = s["source"];
    CHECK(source["prune"] == "cache");
    CHECK(source["int4"] == "run");
    // --no-cache recomputes everything.
    const auto c = test::shrink_cli("run " + quickstart + " --threads 2 --no-cache --out " + (dir / "c").string(), env);
    CHECK_THAT(c.output, !Contains("reused"));
}

TEST_CASE("the manifest records inputs, data, plugins with their types, seeds and stage records", "[model][run]") {
    test::temp_dir dir;
    REQUIRE(test::shrink_cli("run " + quickstart + " -q --out " + (dir / "r").string()).code == 0);
    const json m = json::parse(test::read_text(dir / "r" / "manifest.json"));
    CHECK(m["status"] == "finished");
    CHECK(m["recipe"]["sha256"] == sha256_file(quickstart));
    CHECK(m["recipe"]["resolved_sha256"] == sha256_file(dir / "r" / "recipe.yaml"));
    CHECK(m["data"].size() == 4);  // train and test, images and labels
    for (const json& d : m["data"]) CHECK(d["sha256"] == sha256_file(d["file"].get<std::string>()));
    for (const json& p : m["plugins"]) CHECK_FALSE(p["types"].empty());
    CHECK(m["stage_seeds"].size() == 6);
    for (const json& s : m["stages"]) {
        CHECK(s["key"].get<std::string>().size() == 64);
        CHECK_FALSE(s["started"].get<std::string>().empty());
    }
    // The resolved recipe names its files absolutely, so it can be run from anywhere.
    CHECK_THAT(test::read_text(dir / "r" / "recipe.yaml"), Contains(std::string("model: \"") + SHRINK_REFERENCE_MODEL + "\""));
}

TEST_CASE("replay re-runs a run and reports identical outputs; it refuses when an input changed", "[model][run]") {
    test::temp_dir dir;
    save_model(load_model(SHRINK_REFERENCE_MODEL), dir / "model.safetensors");
    test::write_text(dir / "r.yaml", "version: 1\nseed: 5\nmodel: model.safetensors\ndata:\n"
                                     "  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
                                     "  evaluation: { dataset: fashion-mnist, split: test, samples: 500 }\nstages:\n"
                                     "  - { id: p, use: pruner.magnitude }\n  - { id: c, use: calibrator.minmax }\n"
                                     "  - { id: q, use: quantizer.rtn, params: { activation_bits: 8 } }\n  - { id: e, use: evaluator.accuracy }\n");
    REQUIRE(test::shrink_cli("run -q " + (dir / "r.yaml").string() + " --out " + (dir / "run").string()).code == 0);
    const auto same = test::shrink_cli("replay " + (dir / "run").string());
    INFO(same.output);
    CHECK(same.code == 0);
    CHECK_THAT(same.output, Contains("identical (every model byte for byte, every metric)"));

    // Change the model file: the replay would not be faithful, so it is refused.
    model changed = load_model(dir / "model.safetensors");
    changed.at("fc3.bias").values.write()[0] += 1.0f;
    save_model(changed, dir / "model.safetensors");
    const auto refused = test::shrink_cli("replay " + (dir / "run").string());
    CHECK(refused.code == 1);
    CHECK_THAT(refused.output, Contains("cannot replay faithfully"));
    CHECK_THAT(refused.output, Contains("model.safetensors changed since the run"));

    CHECK(test::shrink_cli("replay " + dir.path().string()).code == 1);  // not a run directory
}

TEST_CASE("diff shows what differs between two runs", "[model][run]") {
    test::temp_dir dir;
    REQUIRE(test::shrink_cli("run " + quickstart + " -q --out " + (dir / "a").string()).code == 0);
    REQUIRE(test::shrink_cli("run " + quickstart + " -q --set seed=9 --set stages.int4.params.group_size=32 --out " + (dir / "b").string()).code == 0);
    const auto d = test::shrink_cli("diff " + (dir / "a").string() + " " + (dir / "b").string());
    INFO(d.output);
    CHECK(d.code == 0);
    CHECK_THAT(d.output, Contains("-       group_size: 64") && Contains("+       group_size: 32"));
    CHECK_THAT(d.output, Contains("seed: 1234 -> 9"));
    CHECK_THAT(d.output, Contains("eval4:"));
    const auto none = test::shrink_cli("diff " + (dir / "a").string() + " " + (dir / "a").string());
    CHECK_THAT(none.output, Contains("no differences"));
}

TEST_CASE("verify accepts a good model file and refuses a damaged one", "[cli]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    const auto ok = test::shrink_cli("verify " + (dir / "m.safetensors").string());
    CHECK(ok.code == 0);
    CHECK_THAT(ok.output, Contains("ok: 6 layers, 6 tensors (0 quantized, 0 sparse)"));
    CHECK_THAT(ok.output, Contains("canonical bytes"));
    std::string bytes = test::read_text(dir / "m.safetensors");
    {
        // Eight more spaces of header padding: still valid, no longer shrink's own layout.
        std::string padded = bytes;
        uint64_t n = 0;
        for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(padded[size_t(i)])) << (8 * i);
        padded.insert(size_t(8 + n), 8, ' ');
        n += 8;
        for (int i = 0; i < 8; ++i) padded[size_t(i)] = char((n >> (8 * i)) & 0xff);
        test::write_text(dir / "padded.safetensors", padded);
        const auto p = test::shrink_cli("verify " + (dir / "padded.safetensors").string());
        CHECK(p.code == 0);
        CHECK_THAT(p.output, Contains("valid, but not in shrink's canonical byte layout"));
    }
    bytes[bytes.size() - 3] = char(0xff);  // a NaN-like pattern in fc3's bias
    bytes[bytes.size() - 2] = char(0xff);
    bytes[bytes.size() - 1] = char(0x7f);
    test::write_text(dir / "bad.safetensors", bytes);
    const auto bad = test::shrink_cli("verify " + (dir / "bad.safetensors").string());
    CHECK(bad.code == 1);
    CHECK_THAT(bad.output, Contains("is not finite"));
}
