// The command line as a user meets it: help, usage errors, plugins, describe, inspect.
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace shrink;
using Catch::Matchers::Contains;

TEST_CASE("every subcommand has --help and exits 0", "[cli]") {
    for (const char* cmd : {"run", "validate", "plan", "plugins", "describe", "inspect", "train"}) {
        const auto r = test::shrink_cli(std::string(cmd) + " --help");
        INFO(cmd << ": " << r.output);
        CHECK(r.code == 0);
        CHECK_THAT(r.output, Contains(std::string("usage: shrink ") + cmd));
    }
    const auto top = test::shrink_cli("--help");
    CHECK(top.code == 0);
    CHECK_THAT(top.output, Contains("exit codes: 0 ok, 1 invalid recipe or input, 2 usage error"));
}

TEST_CASE("usage errors exit 2", "[cli]") {
    CHECK(test::shrink_cli("").code == 2);
    const auto unknown = test::shrink_cli("rnu x.yaml");
    CHECK(unknown.code == 2);
    CHECK_THAT(unknown.output, Contains("unknown command 'rnu'; did you mean 'run'?"));
    CHECK(test::shrink_cli("run x.yaml --bogus").code == 2);
    CHECK(test::shrink_cli("run x.yaml --threads many").code == 2);
    CHECK(test::shrink_cli("run").code == 2);
    CHECK(test::shrink_cli("train --hidden 12,x").code == 2);
}

TEST_CASE("plugins lists every stage type with plugin, version and file", "[cli]") {
    const auto r = test::shrink_cli("plugins");
    CHECK(r.code == 0);
    for (const char* t : {"calibrator.minmax", "quantizer.rtn", "pruner.magnitude", "factorizer.svd", "evaluator.accuracy"})
        CHECK_THAT(r.output, Contains(t));
    CHECK_THAT(r.output, Contains("shrink-quantizer-rtn"));
    CHECK_THAT(r.output, Contains("libshrink_quantizer_rtn.so"));
}

TEST_CASE("plugins are found through SHRINK_PLUGIN_PATH and --plugin-path", "[cli]") {
    const std::string fixtures = SHRINK_FIXTURE_DIR;
    const auto env = test::shrink_cli("plugins", "SHRINK_PLUGIN_PATH=" + fixtures + "/throws");
    CHECK(env.code == 0);
    CHECK_THAT(env.output, Contains("pruner.throws"));
    const auto flag = test::shrink_cli("describe pruner.throws --plugin-path " + fixtures + "/throws");
    CHECK(flag.code == 0);
    CHECK_THAT(flag.output, Contains("fixture-throws 0.0.1"));
}

TEST_CASE("a plugin built for another ABI stops the CLI with exit 1 and says why", "[cli]") {
    const auto r = test::shrink_cli(std::string("plugins --plugin-path ") + SHRINK_FIXTURE_DIR + "/abi");
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Contains("libfixture_abi_mismatch.so: error: plugin was built for shrink plugin ABI version 999, but this "
                                  "shrink uses ABI version 1"));
}

TEST_CASE("describe shows params with types, defaults, ranges and docs, the contract and devices", "[cli]") {
    const auto r = test::shrink_cli("describe quantizer.rtn");
    CHECK(r.code == 0);
    CHECK_THAT(r.output, Contains("group_size: int in [8, 4096], default 64"));
    CHECK_THAT(r.output, Contains("bits: one of 8|4|3|2, default 8"));
    CHECK_THAT(r.output, Contains("requires activation_ranges (when activation_bits is 8)"));
#ifdef SHRINK_HAVE_CUDA
    CHECK_THAT(r.output, Contains("devices: cpu cuda"));  // built with the toolkit: the GPU path is declared
#else
    CHECK_THAT(r.output, Contains("devices: cpu\n"));
#endif
    const auto bad = test::shrink_cli("describe quantizer.rnt");
    CHECK(bad.code == 1);
    CHECK_THAT(bad.output, Contains("did you mean 'quantizer.rtn'?"));
}

TEST_CASE("inspect lists tensors with encodings and totals; bad files exit 1", "[cli]") {
    test::temp_dir dir;
    model m = test::tiny_model();
    m.at("fc2.weight").mask.assign(m.at("fc2.weight").element_count(), 0);
    m.at("fc2.weight").values.assign(m.at("fc2.weight").element_count(), 0.0f);
    save_model(m, dir / "m.safetensors");
    const auto r = test::shrink_cli("inspect " + (dir / "m.safetensors").string());
    CHECK(r.code == 0);
    CHECK_THAT(r.output, Contains("fc1.weight       f32      16x784"));
    CHECK_THAT(r.output, Contains("f32 sparse 100.0%"));
    CHECK_THAT(r.output, Contains("totals: 6 tensors"));
    test::write_text(dir / "bad.safetensors", "garbage!garbage!");
    const auto bad = test::shrink_cli("inspect " + (dir / "bad.safetensors").string());
    CHECK(bad.code == 1);
    CHECK_THAT(bad.output, Contains("bad.safetensors: error: header length"));
}
