// Per-layer artifacts (run/artifacts.hpp, abi.h artifact_put/find/read): stored by a stage
// as files named by their sha256, read lazily and checked on the first read, kept in the
// stage store and the cache, forgotten when the fact they back goes stale; the activation
// ranges of calibrator.minmax travel the same way.
#include "run/artifacts.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"
#include "util/files.hpp"

#include <shrink/abi.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace shrink;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string recipe(const std::string& stages) {
    return "version: 1\nname: t\nseed: 1\nmodel: m.safetensors\n"
           "data:\n  calibration: { dataset: fashion-mnist, split: train, samples: 8 }\nstages:\n" + stages;
}

/// Each stage's state.json in a run's checkpoints, by stage id.
std::map<std::string, json> entries(const fs::path& run) {
    std::map<std::string, json> out;
    for (const auto& e : fs::directory_iterator(run / "checkpoints"))
        if (fs::is_regular_file(e.path() / "state.json")) {
            json j = json::parse(test::read_text(e.path() / "state.json"));
            out[j["stage"].get<std::string>()] = j;
        }
    return out;
}

std::map<std::string, json> results_of(const fs::path& run) {
    std::map<std::string, json> out;
    const json report = json::parse(test::read_text(run / "report.json"));
    for (const auto& s : report["stages"]) out[s["id"].get<std::string>()] = s["results"];
    return out;
}

}  // namespace

TEST_CASE("an artifact lives in a file named by its hash, read lazily and checked on the first read", "[artifacts]") {
    test::temp_dir dir;
    std::vector<double> h(6 * 6);
    for (size_t i = 0; i < h.size(); ++i) h[i] = double(i) * 0.5;
    const artifact_scope scope{dir / "pool", {"hessians"}};
    const auto a = accept_artifact(scope, "h", SHRINK_DTYPE_F64, {6, 6}, h.data());
    CHECK(a->meta().bytes == 6 * 6 * 8);
    CHECK(a->file() == dir / "pool" / a->meta().sha256);
    CHECK(sha256_file(a->file()) == a->meta().sha256);
    CHECK(a->meta().facts == std::set<std::string>{"hessians"});

    // The writer knows its bytes; another reader of the same file reads nothing until
    // asked, then checks the file's hash once and reads the bytes asked for.
    CHECK(a->verified());
    const artifact lazy(a->meta(), a->file());
    CHECK_FALSE(lazy.verified());
    std::vector<double> row(6);
    lazy.read(2 * 6 * 8, 6 * 8, row.data());
    CHECK(lazy.verified());
    CHECK(row == std::vector<double>(h.begin() + 12, h.begin() + 18));
    CHECK_THROWS_WITH(lazy.read(6 * 6 * 8 - 4, 8, row.data()), Catch::Contains("outside"));

    // A file changed in place (same size) is refused on its first read, naming it.
    {
        std::fstream f(a->file(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(9);
        f.put('\x7f');
    }
    const artifact changed(a->meta(), a->file());
    CHECK_THROWS_WITH(changed.read(0, 8, row.data()), Catch::Contains(a->file().string()) && Catch::Contains("sha256"));
    // A file of the wrong size is refused when the entry is read.
    fs::resize_file(a->file(), 10);
    CHECK_THROWS_WITH(artifact(a->meta(), a->file()), Catch::Contains("10 bytes"));

    // Without a pool the bytes stay in memory.
    const auto m = accept_artifact({{}, {"hessians"}}, "h", SHRINK_DTYPE_F64, {36}, h.data());
    CHECK(m->file().empty());
    std::vector<double> back(36);
    m->read(0, 36 * 8, back.data());
    CHECK(back == h);
}

TEST_CASE("artifacts a stage cannot store are refused with the reason", "[artifacts]") {
    const double x[2] = {1, 2};
    CHECK_THROWS_WITH(accept_artifact({{}, {}}, "s", SHRINK_DTYPE_F64, {2}, x), Catch::Contains("provides no per-layer fact"));
    CHECK_THROWS_WITH(accept_artifact({{}, {"hessians"}}, "s", SHRINK_DTYPE_BF16, {2}, x), Catch::Contains("not one of"));
    CHECK_THROWS_WITH(accept_artifact({{}, {"hessians"}}, "s", SHRINK_DTYPE_F64, {}, x), Catch::Contains("rank 0"));
    CHECK_THROWS_WITH(accept_artifact({{}, {"hessians"}}, "s", SHRINK_DTYPE_F64, {1, 1, 1, 1, 1}, x), Catch::Contains("rank 5"));
    CHECK_THROWS_WITH(accept_artifact({{}, {"hessians"}}, "s", SHRINK_DTYPE_F64, {1ull << 32, 1ull << 32}, x),
                      Catch::Contains("overflows"));
}

TEST_CASE("a stale fact takes the artifacts behind it, layer by layer", "[artifacts]") {
    const float v = 1;
    artifact_map m;
    m[{"fc1", "input_min"}] = accept_artifact({{}, {"activation_ranges"}}, "c", SHRINK_DTYPE_F32, {1}, &v);
    m[{"fc2", "input_min"}] = accept_artifact({{}, {"activation_ranges"}}, "c", SHRINK_DTYPE_F32, {1}, &v);
    m[{"fc1", "hessian"}] = accept_artifact({{}, {"hessians"}}, "h", SHRINK_DTYPE_F32, {1}, &v);
    m[{"fc3", "hessian"}] = accept_artifact({{}, {"hessians"}}, "h", SHRINK_DTYPE_F32, {1}, &v);
    forget_stale(m, {{"activation_ranges", {"fc2", "fc3"}}, {"hessians", {"fc1", "fc3"}}}, {{"fc3", "hessian"}});
    std::set<artifact_key> left;
    for (const auto& [k, a] : m) left.insert(k);
    CHECK(left == std::set<artifact_key>{{"fc1", "input_min"}, {"fc3", "hessian"}});

    // The halves of a factorized layer answer for the layer the plan knows.
    m[{"fc2.a", "hessian"}] = accept_artifact({{}, {"hessians"}}, "h", SHRINK_DTYPE_F32, {1}, &v);
    m[{"fc2.b", "input_min"}] = accept_artifact({{}, {"activation_ranges"}}, "c", SHRINK_DTYPE_F32, {1}, &v);
    forget_stale(m, {{"hessians", {"fc2"}}}, {}, [](const std::string& name) { return name.substr(0, 3); });
    CHECK(m.count({"fc2.a", "hessian"}) == 0);
    CHECK(m.count({"fc2.b", "input_min"}) == 1);
}

TEST_CASE("a float64 Hessian goes through the ABI, the stage store and the cache", "[artifacts][cli]") {
    test::temp_dir dir;
    save_model(test::tiny_model(3, 784), dir / "m.safetensors");
    const std::string plugins = std::string(" --plugin-path ") + SHRINK_FIXTURE_DIR + "/contracts";
    const std::string cache = "SHRINK_CACHE=" + (dir / "cache").string();
    auto run = [&](const std::string& reader, const std::string& out) {
        test::write_text(dir / "r.yaml", recipe("  - { id: h, use: calibrator.hessian }\n  - { id: " + reader +
                                                ", use: pruner.hessian_probe, after: h }\n"));
        return test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / out).string() + plugins, cache);
    };

    const auto first = run("g", "one");
    INFO(first.output);
    REQUIRE(first.code == 0);
    auto results = results_of(dir / "one");
    const double trace = results["h"]["trace"].get<double>();
    CHECK(trace > 0);
    CHECK(results["h"]["layers"].get<double>() == 3);
    CHECK(results["g"]["trace"].get<double>() == trace);  // read back by blocks of rows, bit for bit
    CHECK(results["g"]["symmetric"].get<double>() == 1);
    CHECK(results["g"]["layers"].get<double>() == 3);

    // The calibrator's entry lists six artifacts whose files are named by their hashes; the
    // pruner changed weights (as far as the planner knows), so the Hessians went stale and
    // its entry lists none.
    auto stored = entries(dir / "one");
    REQUIRE(stored["h"]["artifacts"].size() == 6);
    for (const json& a : stored["h"]["artifacts"]) {
        const fs::path file = dir / "one" / "checkpoints" / "artifacts" / a["sha256"].get<std::string>();
        CHECK(sha256_file(file) == a["sha256"].get<std::string>());
        CHECK(fs::file_size(file) == a["bytes"].get<uint64_t>());
        CHECK(a["facts"] == json::array({"hessians"}));
        if (a["layer"] == "fc1" && a["key"] == "hessian") {
            CHECK(a["dtype"] == "f64");
            CHECK(a["shape"] == json::array({784, 784}));
            CHECK(a["bytes"] == 784 * 784 * 8);
        }
    }
    CHECK(stored["g"]["artifacts"].empty());

    // Another run reuses the calibrator from the cache and reads its Hessians from there.
    const auto second = run("g2", "two");
    INFO(second.output);
    REQUIRE(second.code == 0);
    CHECK(second.output.find("stage h (calibrator.hessian): reused from the stage cache") != std::string::npos);
    CHECK(results_of(dir / "two")["g2"]["trace"].get<double>() == trace);

    // A cached artifact file changed since: the stage reading it fails, naming the file.
    const fs::path fc1 = dir / "cache" / "artifacts" / [&] {
        for (const json& a : stored["h"]["artifacts"])
            if (a["layer"] == "fc1" && a["key"] == "hessian") return a["sha256"].get<std::string>();
        return std::string();
    }();
    {
        std::fstream f(fc1, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(100);
        f.put('\x55');
    }
    const auto third = run("g3", "three");
    CHECK(third.code == 3);
    CHECK(third.output.find(fc1.string() + ": artifact file does not match its sha256") != std::string::npos);
}

TEST_CASE("a stage that provides no per-layer fact cannot store an artifact", "[artifacts][cli]") {
    test::temp_dir dir;
    save_model(test::tiny_model(3, 784), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", recipe("  - { id: u, use: calibrator.undeclared }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "out").string() + " --plugin-path " +
                                    SHRINK_FIXTURE_DIR + "/contracts");
    CHECK(r.code == 3);
    CHECK(r.output.find("stage 'u' provides no per-layer fact for an artifact to back") != std::string::npos);
}

TEST_CASE("activation ranges are f32 artifacts that a quantizer reads and leaves stale", "[artifacts][cli]") {
    test::temp_dir dir;
    save_model(test::tiny_model(3, 784), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", recipe("  - { id: c, use: calibrator.minmax }\n"
                                            "  - { id: q, use: quantizer.rtn, after: c, params: { activation_bits: 8 } }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "out").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    auto stored = entries(dir / "out");
    std::set<std::string> keys;
    for (const json& a : stored["c"]["artifacts"]) {
        keys.insert(a["layer"].get<std::string>() + "/" + a["key"].get<std::string>());
        CHECK(a["dtype"] == "f32");
        CHECK(a["shape"] == json::array({1}));
        CHECK(a["facts"] == json::array({"activation_ranges"}));
    }
    CHECK(keys == std::set<std::string>{"fc1/input_max", "fc1/input_min", "fc2/input_max", "fc2/input_min", "fc3/input_max",
                                        "fc3/input_min"});
    CHECK(stored["q"]["artifacts"].empty());
    const model q = load_model(dir / "out" / "models" / "q.safetensors");
    for (const layer& l : q.layers)
        if (l.op == "linear") CHECK(l.input_quantization.has_value());
}
