// A corpus of recipes under tests/recipes/, each a mistake a recipe author makes (invalid/)
// or a plan that must pass (valid/). Every file says what to expect in its header:
//
//   # expect: exit=1 line=9 col=19      exit code, and where the (first) error points
//   # message: requires 'activation_ranges'    words the output must hold (repeatable)
//   # env: SHRINK_CUDA_DEVICES=0         environment for the run
//
// Each recipe runs through `shrink validate` next to a tiny model (model.safetensors,
// layers fc1 -> fc2 -> fc3) and a teacher (teacher.safetensors).
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {

struct expectation {
    int exit = 0;
    int line = 0;
    int col = 0;
    std::vector<std::string> messages;
    std::string env;
};

expectation read_expectation(const std::string& text) {
    expectation e;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l) && l.rfind("#", 0) == 0;) {
        auto value = [&](const char* prefix) { return l.substr(std::string(prefix).size()); };
        if (l.rfind("# expect:", 0) == 0) {
            std::istringstream kv(value("# expect:"));
            for (std::string item; kv >> item;) {
                const auto eq = item.find('=');
                const int v = std::stoi(item.substr(eq + 1));
                const std::string k = item.substr(0, eq);
                (k == "exit" ? e.exit : k == "line" ? e.line : e.col) = v;
            }
        } else if (l.rfind("# message: ", 0) == 0) {
            e.messages.push_back(value("# message: "));
        } else if (l.rfind("# env: ", 0) == 0) {
            e.env += value("# env: ") + " ";
        }
    }
    return e;
}

std::vector<std::filesystem::path> corpus(const std::string& kind) {
    std::vector<std::filesystem::path> files;
    for (const auto& f : std::filesystem::directory_iterator(std::string(SHRINK_SOURCE_DIR) + "/tests/recipes/" + kind))
        if (f.path().extension() == ".yaml") files.push_back(f.path());
    std::sort(files.begin(), files.end());
    return files;
}

void check_corpus(const std::string& kind) {
    test::temp_dir dir;
    save_model(test::tiny_model(1), dir / "model.safetensors");
    save_model(test::tiny_model(2), dir / "teacher.safetensors");
    const auto files = corpus(kind);
    for (const auto& file : files) {
        const std::string text = test::read_text(file);
        const expectation e = read_expectation(text);
        test::write_text(dir / file.filename(), text);
        const auto r = test::shrink_cli("validate " + (dir / file.filename()).string() + " --plugin-path " +
                                            SHRINK_FIXTURE_DIR + "/contracts",
                                        e.env);
        INFO(file.filename().string() << ":\n" << r.output);
        CHECK(r.code == e.exit);
        if (e.line) {
            const std::string at = file.filename().string() + ":" + std::to_string(e.line) + ":" +
                                   (e.col ? std::to_string(e.col) + ":" : "");
            CHECK_THAT(r.output, Contains(at));
        }
        for (const std::string& m : e.messages) CHECK_THAT(r.output, Contains(m));
    }
}

}  // namespace

TEST_CASE("recipe corpus: every invalid recipe is refused at its line with its reason", "[cli][corpus]") {
    REQUIRE(corpus("invalid").size() >= 25);
    check_corpus("invalid");
}

TEST_CASE("recipe corpus: every valid recipe passes, with the notes and warnings it deserves", "[cli][corpus]") {
    REQUIRE(corpus("valid").size() >= 10);
    check_corpus("valid");
}
