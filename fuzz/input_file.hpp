// What every fuzz target shares: the fuzzer's bytes as a file (shrink's readers read
// files), and the rule for an outcome. A reader may accept the bytes or refuse them with
// an exception (shrink's errors all derive from std::exception); a crash, a sanitizer
// report, a hang (-timeout) or memory past -rss_limit_mb is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace shrink::fuzz {

/// Writes data to this process's input file named `name` (e.g. "input.onnx") and returns
/// its path; the same file is rewritten for every input.
const std::filesystem::path& input_file(const uint8_t* data, size_t size, const char* name);

/// Runs `read`, taking a refusal (an exception) as a correct outcome.
template <class F>
int accept_or_refuse(F&& read) {
    try {
        read();
    } catch (const std::exception&) {
    }
    return 0;
}

}  // namespace shrink::fuzz
