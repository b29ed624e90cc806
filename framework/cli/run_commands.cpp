// shrink run, validate, plan, replay, diff: recipes and runs.
#include "cli/subcommands.hpp"

#include "cpu/threading.hpp"
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "plan/plan.hpp"
#include "run/executor.hpp"
#include "run/preview.hpp"
#include "run/replay.hpp"
#include "train/reference_models.hpp"
#include "util/console.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"
#include "util/text.hpp"
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>

namespace shrink::cli {

namespace fs = std::filesystem;

int cmd_run(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("recipe", po::value<std::string>(), "recipe file")(
        "out", po::value<std::string>(), "run directory (default: runs/<name>-<time>)")(
        "set", po::value<std::vector<std::string>>()->composing(), "override a recipe value: KEY=VALUE (repeatable)")(
        "threads", po::value<int>(), "CPU threads (default: all cores; with --resume: the run's)")(
        "resume", po::value<std::string>(), "continue the unfinished run in DIR after its last finished stage")(
        "force", "replace a run directory that is not empty")(
        "no-cache", "recompute every stage instead of reusing the stage cache")(
        "quiet,q", "errors only")("verbose,v", "debug output");
    add_plugin_path(opts);
    parsed p = parse("run", "RECIPE [--out DIR] [--set KEY=VALUE ...] [--threads N] [--force] [--no-cache]\n       shrink run --resume RUN_DIR",
                     opts, args, "recipe");
    if (p.help) return 0;
    set_verbosity(p.vm);
    run_options options;
    options.force = p.vm.count("force") > 0;
    options.use_cache = p.vm.count("no-cache") == 0;
    options.threads = p.vm.count("threads") ? p.vm["threads"].as<int>() : 0;
    if (options.threads < 0 || options.threads > 1024) throw usage_error("--threads must be in [0, 1024]");
    std::string recipe_path;
    std::vector<std::string> overrides;
    if (p.vm.count("resume")) {
        // The run's own resolved recipe and thread count: the rest must come out the same.
        if (p.vm.count("recipe") || p.vm.count("set") || p.vm.count("out") || options.force)
            throw usage_error("--resume takes only the run directory (and --threads, --no-cache)");
        options.out_dir = p.vm["resume"].as<std::string>();
        options.resume = true;
        recipe_path = (fs::path(options.out_dir) / "recipe.yaml").string();
        if (!p.vm.count("threads") && fs::is_regular_file(fs::path(options.out_dir) / "manifest.json")) {
            const auto m = nlohmann::json::parse(read_file_bounded(fs::path(options.out_dir) / "manifest.json", 64u << 20), nullptr, false);
            if (m.is_object() && m.contains("threads") && m["threads"].is_number_integer()) options.threads = m["threads"].get<int>();
        }
        if (!fs::is_regular_file(recipe_path))
            throw input_error(source_mark{options.out_dir, 0, 0}, "not a run directory (no recipe.yaml): nothing to resume");
        if (const std::string changed = changed_inputs(options.out_dir, plugin_paths(p.vm)); !changed.empty())
            throw input_error(source_mark{options.out_dir, 0, 0}, "cannot resume: the run's inputs changed:\n" + changed);
    } else {
        recipe_path = require(p.vm, "recipe", "RECIPE");
        overrides = p.vm.count("set") ? p.vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
        options.out_dir = p.vm.count("out") ? p.vm["out"].as<std::string>() : "";
    }
    const recipe r = parse_recipe(recipe_path, overrides);
    const registry plugins = discover_plugins(plugin_paths(p.vm));
    ledger measured = ledger::open_default();
    const plan pl = make_plan(r, plugins, measured);
    for (const std::string& w : pl.warnings) std::fprintf(stderr, "%s\n", w.c_str());
    console::get().info(format_plan(pl, false));
    return execute_plan(pl, plugins, measured, options);
}

int cmd_check(const std::vector<std::string>& args, bool detailed) {
    po::options_description opts("options");
    opts.add_options()("recipe", po::value<std::string>(), "recipe file")(
        "set", po::value<std::vector<std::string>>()->composing(), "override a recipe value: KEY=VALUE (repeatable)");
    if (detailed)
        opts.add_options()("format", po::value<std::string>()->default_value("text"), "text, json or dot (Graphviz)")(
            "threads", po::value<int>(), "the CPU threads the run will use (default: all cores): the preview looks for cached stages computed with them")(
            "no-cache", "preview only stages that start from the input model, not from the stage cache");
    add_plugin_path(opts);
    const char* name = detailed ? "plan" : "validate";
    parsed p = parse(name, detailed ? "RECIPE [--format text|json|dot] [--set KEY=VALUE ...] [--threads N] [--no-cache]" : "RECIPE [--set KEY=VALUE ...]",
                     opts, args, "recipe");
    if (p.help) return 0;
    const std::string format = detailed ? p.vm["format"].as<std::string>() : "text";
    if (format != "text" && format != "json" && format != "dot") throw usage_error("--format must be text, json or dot, got '" + format + "'");
    const auto overrides = p.vm.count("set") ? p.vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const recipe r = parse_recipe(require(p.vm, "recipe", "RECIPE"), overrides);
    const registry plugins = discover_plugins(plugin_paths(p.vm));
    const plan pl = make_plan(r, plugins, ledger::open_default());
    if (format == "dot") {
        std::cout << format_plan_dot(pl);
        return 0;
    }
    // `plan` runs the stages that allow a preview (run/preview.hpp); a preview that fails
    // is the run's failure found early: exit 3, as the run would.
    std::vector<stage_preview> previews;
    if (detailed) {
        const int threads = p.vm.count("threads") ? p.vm["threads"].as<int>() : 0;
        if (threads < 0 || threads > 1024) throw usage_error("--threads must be in [0, 1024]");
        cpu::set_thread_count(threads);
        previews = preview_stages(pl, !p.vm.count("no-cache"));
    }
    const bool failed = std::any_of(previews.begin(), previews.end(), [](const stage_preview& pv) { return pv.status == "failed"; });
    const int code = int(failed ? exit_code::stage_failed : exit_code::ok);
    if (format == "json") {
        nlohmann::json j = nlohmann::json::parse(format_plan_json(pl));
        j["previews"] = previews_json(previews);
        std::cout << j.dump(2) << "\n";
        return code;
    }
    for (const std::string& w : pl.warnings) std::fprintf(stderr, "%s\n", w.c_str());
    if (!detailed) std::cout << r.file << ": ok" << (pl.warnings.empty() ? "" : " (with warnings)") << "\n";
    std::cout << format_plan(pl, detailed) << format_previews(previews);
    return code;
}

int cmd_replay(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("run", po::value<std::string>(), "a finished run directory")(
        "out", po::value<std::string>(), "where to put the replay (default: a temporary directory, removed after)")(
        "quiet,q", "errors only");
    add_plugin_path(opts);
    parsed p = parse("replay", "RUN_DIR [--out DIR]", opts, args, "run");
    if (p.help) return 0;
    set_verbosity(p.vm);
    const std::string dir = require(p.vm, "run", "RUN_DIR");
    const std::string blockers = replay_blockers(dir, plugin_paths(p.vm));
    if (!blockers.empty()) throw input_error(source_mark{dir, 0, 0}, "cannot replay faithfully:\n" + blockers);
    const auto manifest = nlohmann::json::parse(read_file_bounded(fs::path(dir) / "manifest.json", 64u << 20));
    fs::path out_dir;
    bool temporary = false;
    if (p.vm.count("out")) {
        out_dir = p.vm["out"].as<std::string>();
    } else {
        std::string pattern = (fs::temp_directory_path() / "shrink-replay-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory");
        out_dir = pattern;
        temporary = true;
    }
    const recipe r = parse_recipe((fs::path(dir) / "recipe.yaml").string());
    const registry plugins = discover_plugins(plugin_paths(p.vm));
    ledger off{fs::path()};  // a replay checks, it does not teach
    const plan pl = make_plan(r, plugins, off);
    run_options options;
    options.out_dir = out_dir.string();
    options.threads = manifest.value("threads", 0);
    options.use_cache = false;
    const console::level before = console::get().current();
    console::get().set_level(console::level::quiet);
    const int code = execute_plan(pl, plugins, off, options);
    console::get().set_level(before);
    const std::string differences = code == 3 ? "the replay failed (exit 3)\n" : compare_outputs(dir, out_dir.string());
    if (temporary) fs::remove_all(out_dir);
    if (differences.empty()) {
        std::printf("replay of %s: identical (every model byte for byte, every metric)\n", dir.c_str());
        return 0;
    }
    std::printf("replay of %s: DIFFERS\n%s", dir.c_str(), differences.c_str());
    return int(exit_code::stage_failed);
}

int cmd_diff(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("a", po::value<std::string>(), "first run directory")("b", po::value<std::string>(), "second run directory");
    po::positional_options_description pos;
    pos.add("a", 1).add("b", 1);
    opts.add_options()("help,h", "show this help");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: shrink diff RUN_A RUN_B\n\n" << opts << "\n";
        return 0;
    }
    std::cout << diff_runs(require(vm, "a", "RUN_A"), require(vm, "b", "RUN_B"));
    return 0;
}

}  // namespace shrink::cli
