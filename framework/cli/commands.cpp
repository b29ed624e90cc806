// Dispatch of `shrink <command>` to the subcommands (cli/subcommands.hpp).
#include "cli/commands.hpp"

#include "cli/subcommands.hpp"
#include "util/errors.hpp"
#include "util/text.hpp"

#include <functional>
#include <map>

namespace shrink {

using namespace cli;

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
        {"train", cmd_train},
        {"tokenize", cmd_tokenize},
        {"train-tokenizer", cmd_train_tokenizer},
        {"perplexity", cmd_perplexity},
        {"generate", cmd_generate}};
    auto it = commands.find(command);
    if (it == commands.end()) {
        std::vector<std::string> names;
        for (const auto& [n, f] : commands) names.push_back(n);
        throw usage_error("unknown command '" + command + "'" + did_you_mean(command, names) + " (see 'shrink --help')");
    }
    return it->second(args);
}

}  // namespace shrink

