// Messages and progress for the terminal: a live progress line on a TTY (with elapsed and
// remaining time), nothing of progress otherwise unless --verbose (then a log line every
// 10%), nothing but errors with --quiet, debug lines with --verbose.
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
    /// Throttled: at most a few updates a second, and one line at 100%. `what` is a key,
    /// optionally followed by ": " and a detail (the layer at work) that changes within one
    /// run of progress: the clock restarts when the key changes or `done` goes back.
    void progress(const std::string& what, uint64_t done, uint64_t total);

    /// The progress line's text: "KEY: 42% (13/31) DETAIL, 0:05 elapsed, 0:07 left"; the
    /// time left is estimated from the rate so far, once a second has passed.
    static std::string progress_text(const std::string& what, uint64_t done, uint64_t total, double elapsed_seconds);

  private:
    console();
    void end_progress_line();
    level level_ = level::normal;
    bool tty_ = false;
    bool progress_open_ = false;
    std::chrono::steady_clock::time_point last_{}, started_{};
    std::string key_;
    uint64_t last_done_ = 0;
    int last_decile_ = -1;
};

}  // namespace shrink
