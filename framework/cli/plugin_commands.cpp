// shrink plugins, describe: what the plugins offer.
#include "cli/subcommands.hpp"

#include "cpu/threading.hpp"
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "plan/plan.hpp"
#include "run/executor.hpp"
#include "run/replay.hpp"
#include "train/reference_models.hpp"
#include "util/console.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"
#include "util/text.hpp"
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>

namespace shrink::cli {

namespace {

/// A contract entry's condition as the describe output reads it: "bits is set", "activation_bits is 8".
std::string when_text(const std::string& when) {
    const size_t eq = when.find('=');
    return eq == std::string::npos ? when + " is set" : when.substr(0, eq) + " is " + when.substr(eq + 1);
}

}  // namespace

namespace fs = std::filesystem;

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
    if (t.metrics) std::cout << "metrics: " << t.metrics << "\n";
    if (t.flags & SHRINK_STAGE_PREVIEW) std::cout << "previewable: shrink plan runs it ahead on its cached input (docs/recipes.md, \"Preview\")\n";
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
        std::cout << "  " << rel << " " << f.fact << (f.when_param ? " (when " + when_text(f.when_param) + ")" : "") << "\n";
    }
    return 0;
}

}  // namespace shrink::cli
