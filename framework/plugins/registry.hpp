// Finding, loading and checking stage plugins.
//
// Plugins are shared libraries exporting one Boost.DLL alias, SHRINK_PLUGIN_ENTRY_NAME.
// They are looked for, in order, in the build's/installation's plugin directory, in
// $SHRINK_PLUGIN_PATH (colon separated) and in --plugin-path directories; never in the
// current directory and never at a path a recipe names. Each is loaded with immediate
// binding (an unresolved symbol fails at load, not mid-run) and local symbols.
//
// Lifetime: every stage type holds a shared_ptr to its library, so a library stays
// loaded while anything that came from it is alive.
#pragma once

#include <shrink/abi.h>

#include <boost/dll/shared_library.hpp>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace shrink {

struct loaded_plugin {
    std::shared_ptr<boost::dll::shared_library> library;
    std::string file;  // absolute
    std::string name;
    std::string version;
    const shrink_plugin_descriptor* descriptor = nullptr;
    // Host-side copies of the plugin's stage types: members its struct_size does not cover
    // (appended after it was built) read as zero. Deque: stable addresses.
    std::deque<shrink_stage_type> types;
};

struct stage_type_handle {
    std::shared_ptr<const loaded_plugin> plugin;
    const shrink_stage_type* type = nullptr;  // into plugin->types

    std::string name() const { return type->name; }
    std::string kind() const;  // the part before the first '.'
};

/// The stage kinds a type name may start with.
const std::vector<std::string>& stage_kinds();

/// Where plugins are looked for: the built-in directory, then $SHRINK_PLUGIN_PATH, then `extra`.
std::vector<std::string> plugin_search_dirs(const std::vector<std::string>& extra);

class registry {
  public:
    /// Loads every *.so in each directory (sorted by name, missing directories skipped).
    /// Throws input_error naming the file for a plugin that cannot be loaded or is refused.
    void load_dirs(const std::vector<std::string>& dirs);
    void load_file(const std::string& path);

    const stage_type_handle* find(const std::string& type_name) const;
    std::vector<std::string> type_names() const;
    const std::map<std::string, stage_type_handle>& types() const { return types_; }
    const std::vector<std::shared_ptr<const loaded_plugin>>& plugins() const { return plugins_; }

  private:
    std::vector<std::shared_ptr<const loaded_plugin>> plugins_;
    std::map<std::string, stage_type_handle> types_;
};

/// A registry loaded from plugin_search_dirs(extra).
registry discover_plugins(const std::vector<std::string>& extra_dirs);

}  // namespace shrink
