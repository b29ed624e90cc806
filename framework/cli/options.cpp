// Option parsing shared by the subcommands.
#include "cli/subcommands.hpp"

#include "util/console.hpp"
#include "util/errors.hpp"

#include <iostream>

namespace shrink::cli {

/// Parses a subcommand's options; `positional` names its positional argument, if any.
parsed parse(const std::string& command, const std::string& synopsis, po::options_description& opts,
             const std::vector<std::string>& args, const char* positional) {
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

}  // namespace shrink::cli
