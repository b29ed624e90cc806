#include "plugins/registry.hpp"

#include "plugins/abi_tables.hpp"

#include "util/errors.hpp"
#include "util/text.hpp"

#include <boost/dll/runtime_symbol_info.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace shrink {

namespace fs = std::filesystem;

std::string stage_type_handle::kind() const {
    const std::string n = name();
    return n.substr(0, n.find('.'));
}

const std::vector<std::string>& stage_kinds() {
    static const std::vector<std::string> kinds{"calibrator", "analyzer", "transform", "quantizer", "pruner", "factorizer", "distiller", "finetuner", "evaluator"};
    return kinds;
}

std::vector<std::string> plugin_search_dirs(const std::vector<std::string>& extra) {
    std::vector<std::string> dirs;
    // bin/shrink -> lib/shrink/plugins, the same in the build tree and an installation.
    const fs::path exe = boost::dll::program_location().string();
    dirs.push_back((exe.parent_path().parent_path() / "lib" / "shrink" / "plugins").string());
    if (const char* env = std::getenv("SHRINK_PLUGIN_PATH"))
        for (const std::string& d : split(env, ':'))
            if (!d.empty()) dirs.push_back(d);  // an empty entry would mean ".", which we never search
    dirs.insert(dirs.end(), extra.begin(), extra.end());
    for (std::string& d : dirs) d = fs::absolute(d).lexically_normal().string();
    return dirs;
}

void registry::load_dirs(const std::vector<std::string>& dirs) {
    for (const std::string& dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        std::vector<std::string> files;
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            if (e.path().extension() != ".so") continue;
            // A .so that cannot even be stat'ed (a symbolic link loop) is a broken plugin
            // file, refused like one, not an exception from deep inside; a dangling link is
            // no file at all and is passed over, as before.
            std::error_code entry;
            const bool regular = e.is_regular_file(entry);
            if (entry && entry != std::errc::no_such_file_or_directory) throw input_error(source_mark{e.path().string(), 0, 0}, "cannot read this plugin file: " + entry.message());
            if (regular) files.push_back(e.path().string());
        }
        std::sort(files.begin(), files.end());
        for (const std::string& f : files) load_file(f);
    }
}

namespace {

void check_stage_type(const shrink_stage_type& t, const std::string& file) {
    auto fail = [&](const std::string& m) { throw input_error(source_mark{file, 0, 0}, m); };
    if (!t.name || !t.run) fail("a stage type has no name or no run function");
    const std::string name = t.name;
    const std::string kind = name.substr(0, name.find('.'));
    const auto& kinds = stage_kinds();
    if (name.find('.') == std::string::npos || name.size() == kind.size() + 1 ||
        std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
        std::string listed;
        for (const std::string& k : kinds) listed.append(listed.empty() ? "" : ", ").append(k);
        fail("stage type '" + name + "' must be named <kind>.<name> with kind one of " + listed);
    }
    for (uint32_t i = 0; i < t.param_count; ++i) {
        const shrink_param_decl& p = t.params[i];
        if (!p.name || p.type < SHRINK_PARAM_INT || p.type > SHRINK_PARAM_LAYERS)
            fail("stage type '" + name + "' declares a parameter with no name or an unknown type");
        if (p.type == SHRINK_PARAM_CHOICE && (!p.choices || !*p.choices))
            fail("stage type '" + name + "' parameter '" + p.name + "' is a choice with no choices");
    }
    for (uint32_t i = 0; i < t.fact_count; ++i)
        if (!t.facts[i].fact || t.facts[i].relation < SHRINK_FACT_REQUIRES || t.facts[i].relation > SHRINK_FACT_FORBIDS)
            fail("stage type '" + name + "' declares a malformed contract entry");
    if (t.metrics) {
        if (kind != "evaluator") fail("stage type '" + name + "' declares metrics, which only evaluators report");
        const std::string metrics = t.metrics;
        const bool names = !metrics.empty() && metrics.front() != ',' && metrics.back() != ',' && metrics.find(",,") == std::string::npos &&
                           metrics.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_,") == std::string::npos;
        if (!names)
            fail("stage type '" + name + "' declares metrics '" + metrics +
                 "': give names of lower-case letters, digits and '_', separated by commas");
    }
    if (t.flags & ~SHRINK_STAGE_PREVIEW)
        fail("stage type '" + name + "' declares flags " + std::to_string(t.flags) + ", which this shrink does not know (abi.h, SHRINK_STAGE_*)");
    if ((t.flags & SHRINK_STAGE_PREVIEW) && kind == "evaluator")
        fail("stage type '" + name + "' is an evaluator and asks to be previewed: the plan previews only stages that change the model");
    if (kind == "evaluator")
        for (uint32_t i = 0; i < t.fact_count; ++i)
            if (t.facts[i].relation == SHRINK_FACT_INVALIDATES ||
                (t.facts[i].relation == SHRINK_FACT_PROVIDES && std::string(t.facts[i].fact).rfind("weights_", 0) == 0))
                fail("stage type '" + name + "' is an evaluator but declares it changes the model ('" + t.facts[i].fact +
                     "'); evaluators never change weights");
}

}  // namespace

void registry::load_file(const std::string& path) {
    const std::string file = fs::absolute(path).lexically_normal().string();
    auto fail = [&](const std::string& m) { throw input_error(source_mark{file, 0, 0}, m); };
    for (const auto& p : plugins_)
        if (p->file == file) return;  // the same directory named twice in the search path
    auto plugin = std::make_shared<loaded_plugin>();
    plugin->file = file;
    try {
        plugin->library = std::make_shared<boost::dll::shared_library>(
            file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception& e) {
        fail(std::string("cannot load plugin: ") + e.what());
    }
    if (!plugin->library->has(SHRINK_PLUGIN_ENTRY_NAME))
        fail(std::string("not a shrink plugin: it exports no '") + SHRINK_PLUGIN_ENTRY_NAME + "' (use SHRINK_PLUGIN(...))");
    using entry_sig = shrink_status(uint32_t, const shrink_plugin_descriptor**, shrink_error*);
    auto& entry = plugin->library->get_alias<entry_sig>(SHRINK_PLUGIN_ENTRY_NAME);
    shrink_error error{};
    const shrink_plugin_descriptor* d = nullptr;
    if (entry(SHRINK_ABI_VERSION, &d, &error) != SHRINK_OK) fail(std::string("plugin failed to initialise: ") + error.message);
    if (!d) fail("plugin returned no descriptor");
    // The version is the first member in every ABI: read nothing else before checking it.
    if (d->abi_version != SHRINK_ABI_VERSION)
        fail("plugin was built for shrink plugin ABI version " + std::to_string(d->abi_version) +
             ", but this shrink uses ABI version " + std::to_string(SHRINK_ABI_VERSION) + "; rebuild it against this SDK");
    // Tables grow by appending (abi.h): read only what the plugin's struct_size covers.
    shrink_plugin_descriptor desc{};
    try {
        desc = abi::read_table(d, SHRINK_PLUGIN_DESCRIPTOR_SIZE_1, "the plugin descriptor");
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
    plugin->descriptor = d;
    plugin->name = desc.name ? desc.name : "";
    plugin->version = desc.version ? desc.version : "";
    if (plugin->name.empty()) fail("plugin has no name");
    if (desc.stage_type_count && !desc.stage_types) fail("plugin declares stage types but gives no array of them");

    // The array is strided by the plugin's own sizeof(shrink_stage_type), which its first
    // element's struct_size states; every element must state the same.
    const auto* first = reinterpret_cast<const unsigned char*>(desc.stage_types);
    const size_t stride = desc.stage_type_count ? desc.stage_types[0].struct_size : 0;
    for (uint32_t i = 0; i < desc.stage_type_count; ++i) {
        const auto* t = reinterpret_cast<const shrink_stage_type*>(first + size_t(i) * stride);
        if (t->struct_size != stride)
            fail("stage type " + std::to_string(i) + " has struct_size " + std::to_string(t->struct_size) + ", the first " +
                 std::to_string(stride) + "; every element of the array must have the plugin's sizeof(shrink_stage_type)");
        try {
            plugin->types.push_back(abi::read_table(t, SHRINK_STAGE_TYPE_SIZE_1, "a stage type"));
        } catch (const std::invalid_argument& e) {
            fail(e.what());
        }
    }

    std::shared_ptr<const loaded_plugin> shared = plugin;
    std::map<std::string, stage_type_handle> added;
    for (const shrink_stage_type& t : shared->types) {
        check_stage_type(t, file);
        const std::string name = t.name;
        if (auto it = types_.find(name); it != types_.end())
            fail("stage type '" + name + "' is also registered by " + it->second.plugin->file +
                 "; remove one of the two plugins from the search path");
        if (!added.emplace(name, stage_type_handle{shared, &t}).second) fail("stage type '" + name + "' is declared twice");
    }
    types_.insert(added.begin(), added.end());
    plugins_.push_back(shared);
}

const stage_type_handle* registry::find(const std::string& type_name) const {
    auto it = types_.find(type_name);
    return it == types_.end() ? nullptr : &it->second;
}

std::vector<std::string> registry::type_names() const {
    std::vector<std::string> out;
    for (const auto& [name, h] : types_) out.push_back(name);
    return out;
}

registry discover_plugins(const std::vector<std::string>& extra_dirs) {
    registry r;
    r.load_dirs(plugin_search_dirs(extra_dirs));
    return r;
}

}  // namespace shrink
