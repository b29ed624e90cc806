// The ABI grows by appending (abi.h, docs/plugins.md): a plugin built against ABI 1's first
// abi.h loads and runs in this host although shrink_stage_type and shrink_host have grown;
// the host reads an old table with the plugin's stride and only what its size covers; an
// appended member (memory_bytes) works where a plugin sets it.
#include "model/safetensors.hpp"
#include "plan/plan.hpp"
#include "plugins/abi_tables.hpp"
#include "plugins/registry.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstring>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {
const std::string abi1_dir = std::string(SHRINK_FIXTURE_DIR) + "/abi1";
}

TEST_CASE("the host's tables have grown past their first released sizes", "[registry][abi]") {
    // Without an appended member the tests below would prove nothing.
    CHECK(sizeof(shrink_stage_type) > SHRINK_STAGE_TYPE_SIZE_1);
    CHECK(SHRINK_STAGE_TYPE_SIZE_1 == 88);
}

TEST_CASE("a C99 plugin built against ABI 1's first abi.h loads: both stage types, read with its stride", "[registry][abi]") {
    registry r;
    r.load_dirs({abi1_dir});
    REQUIRE(r.type_names() == std::vector<std::string>{"calibrator.c_echo", "calibrator.c_layers"});
    const stage_type_handle* echo = r.find("calibrator.c_echo");
    REQUIRE(echo);
    CHECK(echo->plugin->name == "fixture-abi1-c");
    CHECK(echo->type->struct_size == SHRINK_STAGE_TYPE_SIZE_1);  // the plugin's own sizeof
    REQUIRE(echo->type->param_count == 1);
    CHECK(std::string(echo->type->params[0].name) == "level");
    CHECK(std::string(echo->type->params[0].default_value) == "3");
    CHECK(echo->type->memory_bytes == nullptr);  // beyond the plugin's struct_size: zero, not read
    CHECK(r.find("calibrator.c_layers")->type->memory_bytes == nullptr);
    CHECK(echo->type->flags == 0);  // not previewed: the plan never runs it ahead
}

TEST_CASE("tables are read up to their struct_size and refused below the first released size", "[abi]") {
    // A stage type as an ABI-1 plugin lays it out, followed by bytes that are not its own.
    unsigned char bytes[sizeof(shrink_stage_type) + 64];
    std::memset(bytes, 0xAB, sizeof bytes);
    shrink_stage_type old{};
    old.struct_size = SHRINK_STAGE_TYPE_SIZE_1;
    old.name = "calibrator.x";
    std::memcpy(bytes, &old, SHRINK_STAGE_TYPE_SIZE_1);
    shrink_stage_type t = abi::read_table(reinterpret_cast<const shrink_stage_type*>(bytes), SHRINK_STAGE_TYPE_SIZE_1, "t");
    CHECK(std::string(t.name) == "calibrator.x");
    CHECK(t.memory_bytes == nullptr);

    shrink_stage_type small{};
    small.struct_size = SHRINK_STAGE_TYPE_SIZE_1 - 8;
    CHECK_THROWS_WITH(abi::read_table(&small, SHRINK_STAGE_TYPE_SIZE_1, "a stage type"),
                      Contains("a stage type's struct_size is 80 bytes, smaller than its first released size (88)"));

    // A report from a plugin that knows fewer members than the host writes: nothing past its size.
    unsigned char report_bytes[64];
    std::memset(report_bytes, 0xCD, sizeof report_bytes);
    auto* report = reinterpret_cast<shrink_train_report*>(report_bytes);
    report->struct_size = 16;  // covers struct_size and steps only
    shrink_train_report value{};
    value.steps = 42;
    value.first_epoch_loss = 1.5;
    abi::write_table(report, value);
    CHECK(report->steps == 42);
    CHECK(report->struct_size == 16);
    for (size_t i = 16; i < sizeof report_bytes; ++i) CHECK(report_bytes[i] == 0xCD);
}

TEST_CASE("the ABI-1 C plugin runs in a recipe: the host's larger table, its params read right", "[cli][abi]") {
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");
    test::write_text(dir / "r.yaml",
                     "version: 1\nname: abi1\nseed: 1\nmodel: m.safetensors\n"
                     "data:\n  calibration: { dataset: fashion-mnist, split: train, samples: 8 }\n"
                     "stages:\n  - { id: count, use: calibrator.c_layers }\n"
                     "  - { id: echo, use: calibrator.c_echo, after: count, params: { level: 5 } }\n");
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "out").string() +
                                    " --plugin-path " + abi1_dir);
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto report = nlohmann::json::parse(test::read_text(dir / "out" / "report.json"));
    std::map<std::string, nlohmann::json> by_id;
    for (const auto& s : report["stages"]) by_id[s["id"].get<std::string>()] = s;
    REQUIRE(by_id.count("count"));
    CHECK(by_id["count"]["status"] == "ok");
    CHECK(by_id["count"]["results"]["layers"].get<double>() == double(test::tiny_model().layers.size()));
    CHECK(by_id["count"]["results"]["matrix_layers"].get<double>() == 3);
    CHECK(by_id["count"]["results"]["host_table_bytes"].get<double>() == double(sizeof(shrink_host)));
    CHECK(by_id["echo"]["results"]["level"].get<double>() == 5);
}

TEST_CASE("a stage's own memory estimate replaces its resource bits in the plan", "[plan][abi]") {
    registry reg;
    reg.load_dirs({SHRINK_PLUGIN_DIR, std::string(SHRINK_FIXTURE_DIR) + "/contracts"});
    test::temp_dir dir;
    save_model(test::tiny_model(), dir / "m.safetensors");  // widest input: 784
    test::write_text(dir / "r.yaml",
                     "version: 1\nmodel: m.safetensors\n"
                     "data:\n  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
                     "stages:\n  - { id: b, use: calibrator.blockwise, params: { extra_mib: 3 } }\n"
                     "  - { id: h, use: calibrator.hessian, after: b }\n");
    const recipe rec = parse_recipe((dir / "r.yaml").string());
    const plan p = make_plan(rec, reg, ledger{std::filesystem::path()});
    const planned_stage& b = p.stages[0];
    const uint64_t own = 784ull * 784 * 8 + 3ull * (1u << 20);
    CHECK_THAT(b.memory_detail, Contains("the stage's own estimate"));
    CHECK_THAT(b.memory_detail, !Contains("Hessians"));
    CHECK_THAT(p.stages[1].memory_detail, Contains("Hessians"));  // no estimate of its own: resource bits
    CHECK(b.peak_memory >= own);
}
