#include "util/console.hpp"

#include <cstdio>
#include <string>

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

namespace {

std::string clock_text(double seconds) {
    const uint64_t s = uint64_t(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600), (unsigned long long)(s / 60 % 60),
                      (unsigned long long)(s % 60));
    else
        std::snprintf(buf, sizeof buf, "%llu:%02llu", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
    return buf;
}

}  // namespace

std::string console::progress_text(const std::string& what, uint64_t done, uint64_t total, double elapsed) {
    const size_t colon = what.find(": ");
    const std::string key = what.substr(0, colon), detail = colon == std::string::npos ? "" : what.substr(colon + 2);
    std::string text = key + ": " + std::to_string(total ? 100 * done / total : 100) + "% (" + std::to_string(done) + "/" +
                       std::to_string(total) + ")";
    if (!detail.empty() && done < total) text += " " + detail;
    text += ", " + clock_text(elapsed) + " elapsed";
    if (done > 0 && done < total && elapsed >= 1) text += ", " + clock_text(elapsed * double(total - done) / double(done)) + " left";
    return text;
}

void console::progress(const std::string& what, uint64_t done, uint64_t total) {
    if (level_ == level::quiet || total == 0) return;
    const auto now = std::chrono::steady_clock::now();
    const std::string key = what.substr(0, what.find(": "));
    if (key != key_ || done < last_done_) key_ = key, started_ = now, last_decile_ = -1;
    last_done_ = done;
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    if (tty_) {
        if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
        last_ = now;
        std::fprintf(stderr, "\r  %s\x1b[K", progress_text(what, done, total, elapsed).c_str());  // \x1b[K: clear the rest
        progress_open_ = true;
        if (done >= total) end_progress_line(), key_.clear();
        return;
    }
    // Not a terminal (a CI log, a pipe): quiet, unless --verbose asks for a line every 10%.
    if (level_ != level::verbose) return;
    const int decile = int(10 * done / total);
    if (decile == last_decile_ && done < total) return;
    last_decile_ = done >= total ? -1 : decile;
    std::fprintf(stderr, "  %s\n", progress_text(what, done, total, elapsed).c_str());
    if (done >= total) key_.clear();
}

}  // namespace shrink
