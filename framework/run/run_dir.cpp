#include "run/run_dir.hpp"

#include "run/executor.hpp"
#include "run/manifest.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace shrink {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void refuse(const fs::path& dir, const std::string& why) { throw input_error(source_mark{dir.string(), 0, 0}, why); }

/// Locks DIR/.lock (made if missing) for this process; -1 when another process holds it.
int try_lock(const fs::path& dir) {
    const int fd = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) refuse(dir, std::string("cannot open the run directory's lock: ") + std::strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return -1;
    }
    // Who holds it, for the message another run prints.
    const std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
        // Only the message would lack the pid; the lock holds.
    }
    return fd;
}

std::string holder(const fs::path& dir) {
    std::string pid;
    try {
        pid = read_file_bounded(dir / ".lock", 64);
    } catch (const std::exception&) {
    }
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return pid.empty() ? "another shrink process" : "shrink process " + pid;
}

/// Whether `dir` holds anything but its lock file.
bool occupied(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return false;
    if (!fs::is_directory(dir, ec)) return true;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().filename() != ".lock") return true;
    return false;
}

/// What the manifest of a run in `dir` says its status is ("" when unreadable).
std::string manifest_status(const fs::path& dir) {
    try {
        return nlohmann::json::parse(read_file_bounded(dir / "manifest.json", 64u << 20)).value("status", "");
    } catch (const std::exception&) {
        return "";
    }
}

}  // namespace

run_dir::run_dir(fs::path path, int lock) : path_(std::move(path)), lock_(lock) {}
run_dir::run_dir(run_dir&& other) noexcept : path_(std::move(other.path_)), lock_(other.lock_) { other.lock_ = -1; }
run_dir::~run_dir() {
    if (lock_ >= 0) ::close(lock_);
}

std::optional<run_dir> run_dir::open(const recipe& r, const run_options& options) {
    std::error_code ec;
    const bool named = !options.out_dir.empty();
    const fs::path base = named ? fs::path(options.out_dir) : fs::path("runs") / (r.name + "-" + utc_now("%Y%m%d-%H%M%S"));
    for (int attempt = 1;; ++attempt) {
        const fs::path dir = attempt == 1 ? base : fs::path(base.string() + "-" + std::to_string(attempt));
        if (options.resume && !fs::is_regular_file(dir / "manifest.json", ec))
            refuse(dir, "not a run directory (no manifest.json): nothing to resume");
        // A run directory is taken when another run holds it or, for a new run, when it
        // holds anything: a name shrink chose moves on to the next, a name given is refused.
        const bool was_occupied = occupied(dir);
        if (was_occupied && !options.resume && !options.force) {
            if (!named && attempt < 100) continue;
            refuse(dir, std::string(fs::is_regular_file(dir / "report.json", ec) ? "the run directory holds a finished run"
                                                                                    : "the run directory already exists and is not empty") +
                            "; choose another --out, --force to replace it, or --resume to continue it");
        }
        fs::create_directories(dir, ec);
        if (ec) refuse(dir, "cannot create the run directory: " + ec.message());
        const int lock = try_lock(dir);
        if (lock < 0) {
            if (!named && attempt < 100) continue;
            refuse(dir, "the run directory is in use by " + holder(dir) + "; wait for it, or choose another --out");
        }
        run_dir d(dir, lock);
        // Locked: what the directory holds now is what this run continues or replaces.
        if (!named && occupied(dir) && !was_occupied) continue;  // another run filled it meanwhile
        if (options.resume && manifest_status(dir) == "finished") return std::nullopt;
        return d;
    }
}

void run_dir::prepare(const run_options& options) {
    std::error_code ec;
    if (options.force && !options.resume)
        for (const char* old : {"models", "checkpoints", "report.json", "manifest.json", "recipe.yaml"}) fs::remove_all(path_ / old, ec);
    if (options.resume) fs::remove(path_ / "report.json", ec);  // the attempt it continues did not finish
    // write_file_atomic's temporaries (NAME.tmp-PID) of processes that are gone.
    std::vector<fs::path> stale;
    for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        const size_t at = name.rfind(".tmp-");
        if (at == std::string::npos) continue;
        const std::string digits = name.substr(at + 5);
        if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t pid = pid_t(std::stol(digits));
        if (pid != getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(it->path());
    }
    for (const fs::path& p : stale) fs::remove(p, ec);
    fs::create_directories(path_ / "models", ec);
    if (ec) refuse(path_, "cannot create the run directory: " + ec.message());
}

}  // namespace shrink
