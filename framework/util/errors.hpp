// Error kinds the CLI maps to exit codes, and source positions for recipe diagnostics.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace shrink {

enum class exit_code : int { ok = 0, invalid_input = 1, usage = 2, stage_failed = 3, budget_missed = 4 };

/// A place in an input file; line and column are 1-based, 0 when unknown.
struct source_mark {
    std::string file;
    int line = 0;
    int column = 0;
};

/// "FILE:LINE:COL: error: MESSAGE", dropping the parts that are unknown.
std::string format_diagnostic(const source_mark& where, const std::string& message);

/// Bad recipe, model, plugin or data: nothing was run or written (exit 1).
class input_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
    input_error(const source_mark& where, const std::string& message)
        : std::runtime_error(format_diagnostic(where, message)) {}
};

/// The command line itself is wrong (exit 2).
class usage_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// A stage failed while running (exit 3).
class stage_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Collects every problem found in one pass so an author sees them all at once.
class diagnostics {
  public:
    void error(const source_mark& where, const std::string& message) {
        messages_.push_back(format_diagnostic(where, message));
    }
    bool empty() const { return messages_.empty(); }
    const std::vector<std::string>& messages() const { return messages_; }
    /// Throws one input_error holding all messages, one per line, if there are any.
    void throw_if_any() const;

  private:
    std::vector<std::string> messages_;
};

}  // namespace shrink
