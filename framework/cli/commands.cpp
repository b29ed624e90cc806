#include "cli/commands.hpp"

#include "cpu/threading.hpp"
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "plan/plan.hpp"
#include "run/console.hpp"
#include "run/executor.hpp"
#include "run/replay.hpp"
#include "util/files.hpp"
#include "train/train_mlp.hpp"
#include "util/errors.hpp"
#include "util/text.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>

namespace shrink {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

struct parsed {
    po::variables_map vm;
    bool help = false;
};

/// Parses a subcommand's options; `positional` names its positional argument, if any.
parsed parse(const std::string& command, const std::string& synopsis, po::options_description& opts,
             const std::vector<std::string>& args, const char* positional = nullptr) {
    opts.add_options()("help,h", "show this help");
    po::positional_options_description pos;
    if (positional) pos.add(positional, 1);
    parsed out;
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), out.vm);
    if (out.vm.count("help")) {
        std::cout << "usage: shrink " << command << " " << synopsis << "\n\n" << opts << "\n";
        out.help = true;
        return out;
    }
    po::notify(out.vm);
    return out;
}

void add_plugin_path(po::options_description& opts) {
    opts.add_options()("plugin-path", po::value<std::vector<std::string>>()->composing(),
                       "also look for plugins in DIR (repeatable; after the built-in dir and $SHRINK_PLUGIN_PATH)");
}

std::vector<std::string> plugin_paths(const po::variables_map& vm) {
    return vm.count("plugin-path") ? vm["plugin-path"].as<std::vector<std::string>>() : std::vector<std::string>{};
}

void set_verbosity(const po::variables_map& vm) {
    if (vm.count("quiet") && vm.count("verbose")) throw usage_error("--quiet and --verbose exclude each other");
    if (vm.count("quiet")) console::get().set_level(console::level::quiet);
    if (vm.count("verbose")) console::get().set_level(console::level::verbose);
}

std::string require(const po::variables_map& vm, const char* name, const char* what) {
    if (!vm.count(name)) throw usage_error(std::string("missing ") + what);
    return vm[name].as<std::string>();
}

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

int cmd_verify(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "model file (.safetensors)");
    parsed p = parse("verify", "MODEL", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    // The reader checks the layout (bounds, overlaps, dtypes, finiteness) and every
    // encoding (value ranges, masks, scales, zero points) and the graph.
    const model m = load_model(path);
    const std::string bytes = read_file_bounded(path, model_max_bytes);
    size_t quantized = 0, sparse = 0, factorized = 0;
    for (const auto& [name, t] : m.tensors) quantized += bool(t.quant), sparse += t.sparse();
    for (const layer& l : m.layers) factorized += !l.factor_of.empty();
    std::printf("%s: ok: %zu layers, %zu tensors (%zu quantized, %zu sparse), %zu factor layers; %s\n", path.c_str(),
                m.layers.size(), m.tensors.size(), quantized, sparse, factorized,
                serialize_model(m) == bytes ? "canonical bytes (as shrink writes them)" : "valid, but not in shrink's canonical byte layout");
    return 0;
}

int cmd_export(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "model file (.safetensors)")(
        "format", po::value<std::string>()->default_value("onnx"), "onnx")(
        "out", po::value<std::string>(), "file to write (default: MODEL with the format's extension)");
    parsed p = parse("export", "MODEL [--format onnx] [--out FILE]", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    if (p.vm["format"].as<std::string>() != "onnx") throw usage_error("--format must be onnx");
    const fs::path out = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path(path).replace_extension(".onnx");
    onnx_import::save_onnx(load_model(path), out);
    std::printf("wrote %s\n", out.c_str());
    return 0;
}

int cmd_import(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "ONNX model file")(
        "out", po::value<std::string>(), "shrink model to write (default: MODEL with .safetensors)");
    parsed p = parse("import", "MODEL.onnx [--out FILE]", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    const fs::path out = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path(path).replace_extension(".safetensors");
    const model m = onnx_import::import_onnx(path);
    save_model(m, out);
    std::printf("wrote %s: %zu layers, %llu parameters (inputs are not scaled: give data.preprocess in recipes)\n", out.c_str(),
                m.layers.size(), (unsigned long long)m.parameter_count());
    return 0;
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

int cmd_check(const std::vector<std::string>& args, bool detailed) {
    po::options_description opts("options");
    opts.add_options()("recipe", po::value<std::string>(), "recipe file")(
        "set", po::value<std::vector<std::string>>()->composing(), "override a recipe value: KEY=VALUE (repeatable)");
    if (detailed) opts.add_options()("format", po::value<std::string>()->default_value("text"), "text, json or dot (Graphviz)");
    add_plugin_path(opts);
    const char* name = detailed ? "plan" : "validate";
    parsed p = parse(name, detailed ? "RECIPE [--format text|json|dot] [--set KEY=VALUE ...]" : "RECIPE [--set KEY=VALUE ...]",
                     opts, args, "recipe");
    if (p.help) return 0;
    const std::string format = detailed ? p.vm["format"].as<std::string>() : "text";
    if (format != "text" && format != "json" && format != "dot") throw usage_error("--format must be text, json or dot, got '" + format + "'");
    const auto overrides = p.vm.count("set") ? p.vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const recipe r = parse_recipe(require(p.vm, "recipe", "RECIPE"), overrides);
    const registry plugins = discover_plugins(plugin_paths(p.vm));
    const plan pl = make_plan(r, plugins, ledger::open_default());
    if (format == "json") {
        std::cout << format_plan_json(pl);
        return 0;
    }
    if (format == "dot") {
        std::cout << format_plan_dot(pl);
        return 0;
    }
    for (const std::string& w : pl.warnings) std::fprintf(stderr, "%s\n", w.c_str());
    if (!detailed) std::cout << r.file << ": ok" << (pl.warnings.empty() ? "" : " (with warnings)") << "\n";
    std::cout << format_plan(pl, detailed);
    return 0;
}

int cmd_plugins(const std::vector<std::string>& args) {
    po::options_description opts("options");
    add_plugin_path(opts);
    parsed p = parse("plugins", "[--plugin-path DIR ...]", opts, args);
    if (p.help) return 0;
    const auto dirs = plugin_search_dirs(plugin_paths(p.vm));
    const registry plugins = discover_plugins(plugin_paths(p.vm));
    std::cout << "search path:\n";
    for (const std::string& d : dirs) std::cout << "  " << d << (fs::is_directory(d) ? "" : "  (missing)") << "\n";
    std::printf("\n%-22s %-22s %-9s %s\n", "stage type", "plugin", "version", "file");
    for (const auto& [name, h] : plugins.types())
        std::printf("%-22s %-22s %-9s %s\n", name.c_str(), h.plugin->name.c_str(), h.plugin->version.c_str(), h.plugin->file.c_str());
    return 0;
}

int cmd_describe(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("type", po::value<std::string>(), "stage type, e.g. quantizer.rtn");
    add_plugin_path(opts);
    parsed p = parse("describe", "TYPE", opts, args, "type");
    if (p.help) return 0;
    const std::string type = require(p.vm, "type", "TYPE");
    const registry plugins = discover_plugins(plugin_paths(p.vm));
    const stage_type_handle* h = plugins.find(type);
    if (!h) throw input_error("unknown stage type '" + type + "'" + did_you_mean(type, plugins.type_names()));
    const shrink_stage_type& t = *h->type;
    std::cout << t.name << " — " << (t.doc ? t.doc : "") << "\n";
    std::cout << "plugin: " << h->plugin->name << " " << h->plugin->version << " (" << h->plugin->file << ")\n";
    std::cout << "devices:" << ((t.devices & SHRINK_DEVICE_CPU) ? " cpu" : "") << ((t.devices & SHRINK_DEVICE_CUDA) ? " cuda" : "") << "\n";
    std::cout << "\nparams:\n";
    if (t.param_count == 0) std::cout << "  (none)\n";
    for (uint32_t i = 0; i < t.param_count; ++i) {
        const shrink_param_decl& d = t.params[i];
        std::string type_text;
        switch (d.type) {
            case SHRINK_PARAM_INT: type_text = "int in [" + format_double(d.min_value) + ", " + format_double(d.max_value) + "]"; break;
            case SHRINK_PARAM_FLOAT: type_text = "float in [" + format_double(d.min_value) + ", " + format_double(d.max_value) + "]"; break;
            case SHRINK_PARAM_BOOL: type_text = "bool"; break;
            case SHRINK_PARAM_LAYERS: type_text = "list of layer names"; break;
            default: type_text = "one of " + std::string(d.choices);
        }
        const std::string def = d.default_value ? (d.type == SHRINK_PARAM_LAYERS ? "all" : d.default_value) : "(required)";
        std::cout << "  " << d.name << ": " << type_text << ", default " << def << "\n";
        if (d.doc && *d.doc) std::cout << "      " << d.doc << "\n";
    }
    std::cout << "\ncontract:\n";
    if (t.fact_count == 0) std::cout << "  (none)\n";
    for (uint32_t i = 0; i < t.fact_count; ++i) {
        const shrink_fact_decl& f = t.facts[i];
        const char* rel = f.relation == SHRINK_FACT_REQUIRES   ? "requires"
                          : f.relation == SHRINK_FACT_PROVIDES ? "provides"
                          : f.relation == SHRINK_FACT_FORBIDS  ? "forbids"
                                                               : "invalidates";
        std::cout << "  " << rel << " " << f.fact << (f.when_param ? std::string(" (when ") + f.when_param + " is set)" : "") << "\n";
    }
    return 0;
}

int cmd_inspect(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "model file (.safetensors)");
    parsed p = parse("inspect", "MODEL", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    const model m = load_model(path);
    std::cout << path << "\n";
    for (const auto& [k, v] : m.info) std::cout << "  " << k << ": " << v << "\n";
    std::cout << "\nlayers:\n";
    for (const layer& l : m.layers) {
        std::cout << "  " << l.name << "  " << l.op << "  " << l.input << " -> " << l.output;
        if (!l.factor_of.empty()) std::cout << "  (factor of " << l.factor_of << ", rank " << l.rank << ")";
        if (l.input_quantization) std::cout << "  (input int8, scale " << format_double(l.input_quantization->scale) << ")";
        std::cout << "\n";
    }
    std::printf("\n%-16s %-8s %-12s %-34s %10s\n", "tensor", "dtype", "shape", "encoding", "bytes");
    uint64_t total = 0, elements = 0, kept = 0;
    for (const auto& [name, t] : m.tensors) {
        std::string shape;
        for (int64_t d : t.shape) shape.append(shape.empty() ? "" : "x").append(std::to_string(d));
        const std::string dtype = t.quant ? "int" + std::to_string(t.quant->bits) : "f32";
        std::printf("%-16s %-8s %-12s %-34s %10llu\n", name.c_str(), dtype.c_str(), shape.c_str(),
                    t.encoding_summary().c_str(), (unsigned long long)t.stored_bytes());
        total += t.stored_bytes();
        elements += t.element_count();
        kept += t.kept_count();
    }
    std::printf("\ntotals: %zu tensors, %llu parameters (%llu non-pruned, sparsity %.1f%%), %llu tensor bytes, %llu file bytes\n",
                m.tensors.size(), (unsigned long long)elements, (unsigned long long)kept,
                elements ? 100.0 * double(elements - kept) / double(elements) : 0.0, (unsigned long long)total,
                (unsigned long long)fs::file_size(path));
    return 0;
}

int cmd_train(const std::vector<std::string>& args) {
    po::options_description opts("options");
    train_options t;
    opts.add_options()("out", po::value<std::string>()->default_value("models/fmnist-mlp.safetensors"), "model file to write")(
        "epochs", po::value<int>(&t.epochs)->default_value(t.epochs), "passes over the training set")(
        "hidden", po::value<std::string>()->default_value("256,128"), "hidden layer widths, comma separated")(
        "seed", po::value<uint64_t>(&t.seed)->default_value(t.seed), "random seed")(
        "batch", po::value<int64_t>(&t.batch)->default_value(t.batch), "minibatch size")(
        "lr", po::value<double>(&t.learning_rate)->default_value(t.learning_rate), "Adam learning rate")(
        "weight-decay", po::value<double>(&t.weight_decay)->default_value(t.weight_decay), "decoupled weight decay (AdamW)")(
        "train-samples", po::value<int64_t>(&t.train_samples)->default_value(0), "use only the first N training images (0 = all)")(
        "data", po::value<std::string>(&t.data_dir), "Fashion-MNIST directory (default: /usr/share/datasets/fashion-mnist)")(
        "threads", po::value<int>()->default_value(0), "CPU threads (0 = all cores); the same count gives the same bytes")(
        "quiet,q", "errors only")("verbose,v", "debug output");
    parsed p = parse("train", "[--out FILE] [--epochs N] [--hidden 256,128] [--seed S] [--threads N]", opts, args);
    if (p.help) return 0;
    set_verbosity(p.vm);
    t.hidden.clear();
    for (const std::string& w : split(p.vm["hidden"].as<std::string>(), ',')) {
        auto v = parse_decimal_int(w);
        if (!v || *v < 1 || *v > 65536) throw usage_error("--hidden takes widths like 256,128; got '" + w + "'");
        t.hidden.push_back(*v);
    }
    if (t.epochs < 1 || t.epochs > 1000) throw usage_error("--epochs must be in [1, 1000]");
    if (t.batch < 1 || t.batch > 60000) throw usage_error("--batch must be in [1, 60000]");
    if (!(t.learning_rate > 0 && t.learning_rate < 1)) throw usage_error("--lr must be in (0, 1)");
    if (!(t.weight_decay >= 0 && t.weight_decay < 10)) throw usage_error("--weight-decay must be in [0, 10)");
    cpu::set_thread_count(p.vm["threads"].as<int>());
    const fs::path out = p.vm["out"].as<std::string>();
    console& c = console::get();
    c.info("training MLP 784-" + p.vm["hidden"].as<std::string>() + "-10 on Fashion-MNIST, " + std::to_string(t.epochs) +
           " epochs, seed " + std::to_string(t.seed) + ", " + std::to_string(cpu::thread_count()) + " threads");
    const train_result result = train_mlp(t, [&](int epoch, double loss) {
        c.progress("training", uint64_t(epoch), uint64_t(t.epochs));
        c.debug("epoch " + std::to_string(epoch) + " loss " + format_double(loss));
    });
    if (out.has_parent_path()) fs::create_directories(out.parent_path());
    save_model(result.net, out);
    char line[160];
    std::snprintf(line, sizeof line, "test accuracy %.4f, final training loss %.4f; wrote %s", result.test_accuracy,
                  result.final_loss, out.c_str());
    c.info(line);
    return 0;
}

}  // namespace

int run_command(const std::string& command, const std::vector<std::string>& args) {
    static const std::map<std::string, std::function<int(const std::vector<std::string>&)>> commands{
        {"run", cmd_run},
        {"validate", [](const auto& a) { return cmd_check(a, false); }},
        {"plan", [](const auto& a) { return cmd_check(a, true); }},
        {"plugins", cmd_plugins},
        {"describe", cmd_describe},
        {"inspect", cmd_inspect},
        {"verify", cmd_verify},
        {"export", cmd_export},
        {"import", cmd_import},
        {"replay", cmd_replay},
        {"diff", cmd_diff},
        {"train", cmd_train}};
    auto it = commands.find(command);
    if (it == commands.end()) {
        std::vector<std::string> names;
        for (const auto& [n, f] : commands) names.push_back(n);
        throw usage_error("unknown command '" + command + "'" + did_you_mean(command, names) + " (see 'shrink --help')");
    }
    return it->second(args);
}

}  // namespace shrink
