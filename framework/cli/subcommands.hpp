// The subcommands' entry points and the option helpers they share.
#pragma once

#include <boost/program_options.hpp>

#include <string>
#include <vector>

namespace shrink::cli {

namespace po = boost::program_options;

struct parsed {
    po::variables_map vm;
    bool help = false;
};

/// Parses a subcommand's options; `positional` names its positional argument, if any.
/// With --help, prints usage and returns help = true.
parsed parse(const std::string& command, const std::string& synopsis, po::options_description& opts,
             const std::vector<std::string>& args, const char* positional = nullptr);
void add_plugin_path(po::options_description& opts);
std::vector<std::string> plugin_paths(const po::variables_map& vm);
void set_verbosity(const po::variables_map& vm);
/// The value of a required option or positional argument; usage_error naming `what` if absent.
std::string require(const po::variables_map& vm, const char* name, const char* what);

// run_commands.cpp
int cmd_run(const std::vector<std::string>& args);
int cmd_check(const std::vector<std::string>& args, bool detailed);  // validate, plan
int cmd_replay(const std::vector<std::string>& args);
int cmd_diff(const std::vector<std::string>& args);
// plugin_commands.cpp
int cmd_plugins(const std::vector<std::string>& args);
int cmd_describe(const std::vector<std::string>& args);
// model_commands.cpp
int cmd_inspect(const std::vector<std::string>& args);
int cmd_verify(const std::vector<std::string>& args);
int cmd_export(const std::vector<std::string>& args);
int cmd_import(const std::vector<std::string>& args);
int cmd_train(const std::vector<std::string>& args);
// train_lm_command.cpp
int cmd_train_lm(const std::vector<std::string>& args);
// text_commands.cpp
int cmd_tokenize(const std::vector<std::string>& args);
int cmd_train_tokenizer(const std::vector<std::string>& args);
int cmd_perplexity(const std::vector<std::string>& args);
int cmd_generate(const std::vector<std::string>& args);

}  // namespace shrink::cli
