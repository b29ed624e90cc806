// The run directory (run/run_dir.hpp): locked while a run owns it, a manifest that says
// which stages finished, failed or never ran after every stage, and --resume that reruns
// what failed or is missing, removes what killed runs left, and refuses only a finished run.
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

using namespace shrink;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string plugins = std::string(" --plugin-path ") + SHRINK_FIXTURE_DIR + "/throws";

/// A recipe on a tiny model: a flaky pruner, then RTN int8.
fs::path write_recipe(const test::temp_dir& dir) {
    save_model(test::tiny_model(2, 16), dir / "m.safetensors");
    test::write_text(dir / "r.yaml", "version: 1\nname: t\nseed: 1\nmodel: m.safetensors\nstages:\n"
                                     "  - { id: flaky, use: pruner.flaky }\n"
                                     "  - { id: int8, use: quantizer.rtn }\n");
    return dir / "r.yaml";
}

std::map<std::string, std::string> stage_statuses(const fs::path& run) {
    std::map<std::string, std::string> out;
    const json manifest = json::parse(test::read_text(run / "manifest.json"));
    for (const json& s : manifest["stages"]) out[s["id"]] = s["status"];
    return out;
}

std::string run_status(const fs::path& run) { return json::parse(test::read_text(run / "manifest.json"))["status"]; }

}  // namespace

TEST_CASE("a failed stage is rerun by --resume, and only a finished run is refused", "[run_dir][cli]") {
    test::temp_dir dir;
    const fs::path recipe = write_recipe(dir), out = dir / "out";
    const auto failed = test::shrink_cli("run " + recipe.string() + " --out " + out.string() + plugins, "SHRINK_FIXTURE_FAIL=1");
    INFO(failed.output);
    REQUIRE(failed.code == 3);
    CHECK(run_status(out) == "failed");
    CHECK(stage_statuses(out) == std::map<std::string, std::string>{{"flaky", "failed"}, {"int8", "skipped"}});
    CHECK(fs::exists(out / "report.json"));

    // A killed run's temporary file (its process is gone) is removed on resume.
    fs::create_directories(out / "checkpoints");
    test::write_text(out / "checkpoints" / "state.json.tmp-999999999", "");

    const auto resumed = test::shrink_cli("run --resume " + out.string() + plugins);
    INFO(resumed.output);
    CHECK(resumed.code == 0);
    CHECK(resumed.output.find("stage flaky (pruner.flaky)") != std::string::npos);
    CHECK(run_status(out) == "finished");
    CHECK(stage_statuses(out) == std::map<std::string, std::string>{{"flaky", "ok"}, {"int8", "ok"}});
    CHECK(fs::exists(out / "models" / "int8.safetensors"));
    CHECK_FALSE(fs::exists(out / "checkpoints" / "state.json.tmp-999999999"));

    const auto again = test::shrink_cli("run --resume " + out.string() + plugins);
    CHECK(again.code == 0);
    CHECK(again.output.find("already finished; nothing to resume") != std::string::npos);
}

TEST_CASE("a run whose last write failed is finished by --resume", "[run_dir][cli]") {
    // As a full disk leaves it: the stages' checkpoints written, a model missing, the
    // manifest still "running".
    test::temp_dir dir;
    const fs::path recipe = write_recipe(dir), out = dir / "out";
    REQUIRE(test::shrink_cli("run " + recipe.string() + " --out " + out.string() + plugins).code == 0);
    const std::string bytes = test::read_text(out / "models" / "int8.safetensors");
    fs::remove(out / "models" / "int8.safetensors");
    json manifest = json::parse(test::read_text(out / "manifest.json"));
    manifest["status"] = "running";
    test::write_text(out / "manifest.json", manifest.dump(2));
    const auto resumed = test::shrink_cli("run --resume " + out.string() + plugins);
    INFO(resumed.output);
    CHECK(resumed.code == 0);
    CHECK(resumed.output.find("reused from the run's checkpoint") != std::string::npos);
    CHECK(test::read_text(out / "models" / "int8.safetensors") == bytes);
    CHECK(run_status(out) == "finished");
}

TEST_CASE("a run directory another run holds is refused, naming the holder", "[run_dir][cli]") {
    test::temp_dir dir;
    const fs::path recipe = write_recipe(dir), out = dir / "out";
    fs::create_directories(out);
    const int fd = ::open((out / ".lock").c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);
    const std::string pid = std::to_string(getpid()) + "\n";
    REQUIRE(write(fd, pid.data(), pid.size()) == ssize_t(pid.size()));
    const auto r = test::shrink_cli("run " + recipe.string() + " --out " + out.string() + " --force" + plugins);
    ::close(fd);
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find("the run directory is in use by shrink process " + std::to_string(getpid())) != std::string::npos);
    CHECK_FALSE(fs::exists(out / "manifest.json"));
}

TEST_CASE("runs without --out never share a directory", "[run_dir][cli]") {
    // Started back to back (often within the same second, the directory name's precision).
    test::temp_dir dir;
    const fs::path recipe = write_recipe(dir);
    for (int k = 0; k < 3; ++k) REQUIRE(test::shrink_cli("run " + recipe.string() + plugins, "cd " + dir.path().string() + " &&").code == 0);
    int runs = 0;
    for (const auto& e : fs::directory_iterator(dir / "runs")) runs += fs::exists(e.path() / "report.json");
    CHECK(runs == 3);
}
