// quantizer.rtn reads a weight larger than its block a block of rows at a time
// (tensor_read_rows_f32) and gives the same codes as quantizing it whole; plugins see a
// tensor's dtype and read 16-bit weights widened, whole or by rows.
#include "rtn_kernel.hpp"
#include "model/dtype.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"

#include <shrink/abi.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace shrink;

namespace {
std::string recipe(const std::string& stages, const std::string& model = "m.safetensors") {
    return "version: 1\nname: t\nseed: 1\nmodel: " + model +
           "\ndata:\n  calibration: { dataset: fashion-mnist, split: train, samples: 8 }\nstages:\n" + stages;
}
}  // namespace

TEST_CASE("RTN by blocks of rows gives the codes of RTN on the whole weight", "[rtn][cli]") {
    // 600 x 4000 floats: more than the plugin's 1M-float block, so it reads three blocks.
    model m;
    m.input_features = 784;
    rng g(8);
    test::add_random_tensor(m, g, "a.weight", {4000, 784}, 0.05);
    test::add_random_tensor(m, g, "b.weight", {600, 4000}, 0.05);
    m.layers.push_back(make_layer("a", "linear", "input", "a.out", "a.weight"));
    m.layers.push_back(make_layer("b", "linear", "a.out", "b.out", "b.weight"));
    m.output = "b.out";
    test::temp_dir dir;
    save_model(m, dir / "m.safetensors");
    for (const std::string params : {"{ bits: 4, scheme: asymmetric, granularity: per_group, group_size: 64 }",
                                     "{ bits: 8, granularity: per_channel }"}) {
        INFO(params);
        test::write_text(dir / "r.yaml", recipe("  - { id: q, use: quantizer.rtn, params: " + params + " }\n"));
        std::filesystem::remove_all(dir / "out");
        const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "out").string());
        INFO(r.output);
        REQUIRE(r.code == 0);
        const model q = load_model(dir / "out" / "models" / "q.safetensors");
        rtn::options o;
        o.bits = params.find("bits: 4") != std::string::npos ? 4 : 8;
        o.symmetric = o.bits == 8;
        o.gran = o.bits == 4 ? rtn::granularity::per_group : rtn::granularity::per_channel;
        o.group_size = 64;
        const std::vector<float> w = m.at("b.weight").decode();
        const rtn::result whole = rtn::quantize(w.data(), 600, 4000, o);
        const tensor& t = q.at("b.weight");
        CHECK(t.q == whole.q);
        CHECK(t.scales == whole.scales);
        CHECK(t.zero_points == whole.zero_points);
    }
}

TEST_CASE("plugins see a tensor's dtype and read a bf16 weight widened, whole or by rows", "[dtype][abi][cli]") {
    model m = test::tiny_model(2, 32);
    tensor& w = m.at("fc1.weight");
    std::vector<uint16_t> bits;
    for (float v : w.values) bits.push_back(f32_to_bf16(v));
    w.type = dtype::bf16;
    w.half = std::move(bits);
    w.values.clear();
    test::temp_dir dir;
    save_model(m, dir / "m.safetensors");
    test::write_text(dir / "r.yaml", recipe("  - { id: b, use: calibrator.dtype_probe }\n"
                                            "  - { id: f, use: calibrator.dtype_probe, after: b, params: { tensor: fc2.weight } }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "out").string() + " --plugin-path " +
                                    SHRINK_FIXTURE_DIR + "/contracts");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto report = nlohmann::json::parse(test::read_text(dir / "out" / "report.json"));
    std::map<std::string, nlohmann::json> results;
    for (const auto& s : report["stages"]) results[s["id"].get<std::string>()] = s["results"];
    CHECK(results["b"]["dtype"].get<double>() == SHRINK_DTYPE_BF16);
    CHECK(results["b"]["bits"].get<double>() == 16);
    CHECK(results["b"]["rows_match"].get<double>() == 1);
    CHECK(results["f"]["dtype"].get<double>() == SHRINK_DTYPE_F32);
    CHECK(results["f"]["rows_match"].get<double>() == 1);
}
