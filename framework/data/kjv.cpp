#include "data/kjv.hpp"
#include "util/errors.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace shrink {

namespace {

constexpr size_t kjv_verses = 31102;

/// What `bible -f RANGE` prints, or an input_error.
std::string run_bible(const char* range) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    const char* argv[] = {"bible", "-f", range, nullptr};
    pid_t pid = 0;
    const int spawned = posix_spawnp(&pid, "bible", &actions, nullptr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (spawned != 0) {
        close(fds[0]);
        throw input_error("dataset kjv: cannot run 'bible' (" + std::string(std::strerror(spawned)) +
                          "): it comes with Debian's bible-kjv package (apt-get install bible-kjv)");
    }
    std::string out;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n > 0) out.append(buf, size_t(n));
        else if (n == 0 || errno != EINTR) break;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw input_error(std::string("dataset kjv: 'bible -f ") + range + "' failed (status " + std::to_string(status) + ")");
    return out;
}

/// The verses of `raw` without their references ("Ge1:1 In the beginning..."), a line
/// each; `lines` counts them.
std::string strip_references(const std::string& raw, size_t& lines) {
    std::string text;
    text.reserve(raw.size());
    lines = 0;
    for (size_t at = 0; at < raw.size();) {
        size_t end = raw.find('\n', at);
        if (end == std::string::npos) end = raw.size();
        const size_t space = raw.find(' ', at);
        if (space != std::string::npos && space < end) {
            text.append(raw, space + 1, end - space - 1);
            text += '\n';
            ++lines;
        }
        at = end + 1;
    }
    return text;
}

}  // namespace

std::string kjv_text() {
    size_t lines = 0;
    std::string text = strip_references(run_bible("Gen1:1-Rev22:21"), lines);
    if (lines != kjv_verses)
        throw input_error("dataset kjv: 'bible' printed " + std::to_string(lines) + " verses, not the " + std::to_string(kjv_verses) +
                          " of the King James text");
    return text;
}

std::string kjv_sample() {
    size_t lines = 0;
    return strip_references(run_bible("Gen1:1-Gen10:32"), lines);
}

}  // namespace shrink
