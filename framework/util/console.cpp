#include "util/console.hpp"

#include <cstdio>
#include <unistd.h>

namespace shrink {

console& console::get() {
    static console c;
    return c;
}

console::console() : tty_(::isatty(STDERR_FILENO) == 1) {}

void console::end_progress_line() {
    if (progress_open_) std::fputc('\n', stderr);
    progress_open_ = false;
}

void console::info(const std::string& message) {
    if (level_ == level::quiet) return;
    end_progress_line();
    std::fprintf(stdout, "%s\n", message.c_str());
    std::fflush(stdout);
}

void console::debug(const std::string& message) {
    if (level_ != level::verbose) return;
    end_progress_line();
    std::fprintf(stderr, "debug: %s\n", message.c_str());
}

void console::warning(const std::string& message) {
    end_progress_line();
    std::fprintf(stderr, "warning: %s\n", message.c_str());
}

void console::progress(const std::string& what, uint64_t done, uint64_t total) {
    if (level_ == level::quiet || total == 0) return;
    const auto now = std::chrono::steady_clock::now();
    const int percent = int(100 * done / total);
    if (tty_) {
        if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
        last_ = now;
        std::fprintf(stderr, "\r  %s: %3d%% (%llu/%llu)", what.c_str(), percent, (unsigned long long)done,
                     (unsigned long long)total);
        progress_open_ = true;
        if (done >= total) end_progress_line();
        return;
    }
    // Plain lines in logs: every 10% at most.
    const int decile = percent / 10;
    if (decile == last_decile_ && done < total) return;
    last_decile_ = done >= total ? -1 : decile;
    if (level_ == level::verbose || done >= total)
        std::fprintf(stderr, "  %s: %d%% (%llu/%llu)\n", what.c_str(), percent, (unsigned long long)done,
                     (unsigned long long)total);
}

}  // namespace shrink
