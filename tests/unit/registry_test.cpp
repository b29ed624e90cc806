#include "plugins/registry.hpp"
#include "util/errors.hpp"

#include <catch2/catch.hpp>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {
std::string load_error(const std::string& dir) {
    registry r;
    try {
        r.load_dirs({std::string(SHRINK_FIXTURE_DIR) + "/" + dir});
    } catch (const input_error& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("first-party plugins load and declare their stage types", "[registry]") {
    registry r;
    r.load_dirs({SHRINK_PLUGIN_DIR});
    CHECK(r.type_names() == std::vector<std::string>{"analyzer.sensitivity", "calibrator.channels", "calibrator.entropy", "calibrator.hessian", "calibrator.minmax",
                                                     "calibrator.mse", "calibrator.percentile", "distiller.kd", "evaluator.accuracy",
                                                     "evaluator.perplexity", "factorizer.svd", "finetuner.standard", "pruner.magnitude",
                                                     "quantizer.awq", "quantizer.gptq", "quantizer.gptq_sequential", "quantizer.kmeans", "quantizer.mixed", "quantizer.nf4", "quantizer.qat", "quantizer.rtn", "transform.smoothquant"});
    const stage_type_handle* q = r.find("quantizer.rtn");
    REQUIRE(q);
    CHECK(q->kind() == "quantizer");
    CHECK(q->plugin->name == "shrink-quantizer-rtn");
    CHECK(q->type->param_count == 6);
}

TEST_CASE("a plugin built for another ABI is refused naming the file and both versions", "[registry]") {
    CHECK_THAT(load_error("abi"), Contains("libfixture_abi_mismatch.so: error: plugin was built for shrink plugin ABI version 999, "
                                           "but this shrink uses ABI version 1"));
}

TEST_CASE("an unresolved symbol fails at load (immediate binding), not mid-run", "[registry]") {
    const std::string e = load_error("missing");
    CHECK_THAT(e, Contains("libfixture_missing_symbol.so: error: cannot load plugin"));
    CHECK_THAT(e, Contains("shrink_fixture_function_nobody_defines"));
}

TEST_CASE("a plugin that throws while initialising is reported with its message", "[registry]") {
    CHECK_THAT(load_error("init"), Contains("plugin failed to initialise: fixture: cannot initialise"));
}

TEST_CASE("two plugins registering one stage type is an error naming both files", "[registry]") {
    const std::string e = load_error("duplicate");
    CHECK_THAT(e, Contains("libfixture_duplicate_b.so: error: stage type 'pruner.duplicate' is also registered by"));
    CHECK_THAT(e, Contains("libfixture_duplicate_a.so"));
}

TEST_CASE("an evaluator that declares it changes weights is refused at load", "[registry]") {
    CHECK_THAT(load_error("bad_evaluator"), Contains("stage type 'evaluator.prunes' is an evaluator but declares it changes the "
                                                     "model ('weights_sparse'); evaluators never change weights"));
}

TEST_CASE("an evaluator whose declared metrics are not names is refused at load", "[registry]") {
    CHECK_THAT(load_error("bad_metrics"), Contains("stage type 'evaluator.scores' declares metrics 'accuracy,Top 5': give names of "
                                                   "lower-case letters, digits and '_', separated by commas"));
}

TEST_CASE("an evaluator that asks the plan to preview it is refused at load", "[registry]") {
    CHECK_THAT(load_error("bad_preview"), Contains("stage type 'evaluator.peek' is an evaluator and asks to be previewed: the plan "
                                                   "previews only stages that change the model"));
}

TEST_CASE("a file that is not a plugin is refused", "[registry]") {
    registry r;
    CHECK_THROWS_WITH(r.load_file(std::string(SHRINK_PLUGIN_DIR) + "/../../../CMakeCache.txt"), Contains("cannot load plugin"));
}

TEST_CASE("a stage type keeps its library loaded after the registry is gone", "[registry]") {
    stage_type_handle kept;
    {
        registry r;
        r.load_dirs({SHRINK_PLUGIN_DIR});
        kept = *r.find("pruner.magnitude");
    }
    // The descriptor lives in the library: reading it would crash had it been unloaded.
    CHECK(std::string(kept.type->name) == "pruner.magnitude");
    CHECK(kept.plugin->library->is_loaded());
}

TEST_CASE("the search path never includes the current directory", "[registry]") {
    setenv("SHRINK_PLUGIN_PATH", "::/nonexistent", 1);
    const auto dirs = plugin_search_dirs({"extra"});
    unsetenv("SHRINK_PLUGIN_PATH");
    REQUIRE(dirs.size() == 3);
    CHECK(dirs[1] == "/nonexistent");
    CHECK(dirs[2].front() == '/');  // relative entries are made absolute, never searched by bare name
}
