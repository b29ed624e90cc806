// Messages and progress for the terminal: a live progress line on a TTY, plain log lines
// otherwise (CI logs), nothing but errors with --quiet, debug lines with --verbose.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace shrink {

class console {
  public:
    enum class level { quiet, normal, verbose };

    static console& get();
    void set_level(level l) { level_ = l; }
    bool verbose() const { return level_ == level::verbose; }
    level current() const { return level_; }

    void info(const std::string& message);
    void debug(const std::string& message);
    void warning(const std::string& message);
    /// Throttled: at most a few updates a second, and one line at 100%.
    void progress(const std::string& what, uint64_t done, uint64_t total);

  private:
    console();
    void end_progress_line();
    level level_ = level::normal;
    bool tty_ = false;
    bool progress_open_ = false;
    std::chrono::steady_clock::time_point last_{};
    int last_decile_ = -1;
};

}  // namespace shrink
