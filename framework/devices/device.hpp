// Where a stage or a forward pass runs: the CPU, or CUDA device N. Recipes write "cpu",
// "cuda", "cuda:N" or "auto"; the planner resolves "auto" and checks the device exists,
// so everything after planning holds a concrete choice.
#pragma once

#include <optional>
#include <string>

namespace shrink {

struct device_choice {
    bool cuda = false;
    int ordinal = 0;  // cuda only
    std::string text() const { return cuda ? "cuda:" + std::to_string(ordinal) : "cpu"; }
};

/// "cpu", "cuda" (device 0) or "cuda:N"; nothing for anything else ("auto" included).
std::optional<device_choice> parse_device(const std::string& text);

/// Whether `text` is a device a recipe may name: the above or "auto".
bool is_device_name(const std::string& text);

}  // namespace shrink
