#pragma once

#include <string>
#include <vector>

namespace shrink {

/// Runs one subcommand; returns the exit code. Throws usage_error / input_error / stage_error.
int run_command(const std::string& command, const std::vector<std::string>& args);

}  // namespace shrink
