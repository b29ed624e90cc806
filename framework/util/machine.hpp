// What a report or a benchmark says about the machine it ran on.
#pragma once

#include <string>

namespace shrink {

/// The CPU's model name from /proc/cpuinfo ("unknown" where it says none).
std::string cpu_model();

}  // namespace shrink
