#include "plan/ledger.hpp"

#include "util/console.hpp"
#include "util/files.hpp"

#include <ctime>

namespace shrink {

namespace fs = std::filesystem;

ledger::ledger(fs::path file) : file_(std::move(file)) {
    std::error_code ec;
    if (file_.empty() || !fs::exists(file_, ec)) return;
    try {
        const nlohmann::json j = nlohmann::json::parse(read_file_bounded(file_, 64u << 20));
        if (j.is_object() && j.contains("entries") && j["entries"].is_object()) entries_ = j["entries"];
        else throw std::runtime_error("not a ledger");
    } catch (const std::exception& e) {
        // A damaged cache must not block planning: say so, and start afresh.
        console::get().warning(file_.string() + ": ignoring an unreadable ledger (" + e.what() + ")");
    }
}

ledger ledger::open_default() { return ledger(cache_path("SHRINK_LEDGER", "ledger.json")); }

std::optional<ledger::measurement> ledger::find(const std::string& key) const {
    if (!entries_.contains(key)) return std::nullopt;
    const nlohmann::json& e = entries_[key];
    try {
        return measurement{e.at("value").get<double>(), e.at("stderr").get<double>(), e.at("runs").get<uint64_t>(),
                           e.at("recorded").get<std::string>()};
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

void ledger::record(const std::string& key, double value, double stderr_, const nlohmann::json& about) {
    if (!enabled()) return;
    const uint64_t runs = entries_.contains(key) && entries_[key].contains("runs") ? entries_[key]["runs"].get<uint64_t>() + 1 : 1;
    char date[16];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
    entries_[key] = {{"value", value}, {"stderr", stderr_}, {"runs", runs}, {"recorded", date}, {"about", about}};
    dirty_ = true;
}

void ledger::save() const {
    if (!enabled() || !dirty_) return;
    std::error_code ec;
    fs::create_directories(file_.parent_path(), ec);
    write_file_atomic(file_, nlohmann::json{{"format", 1}, {"entries", entries_}}.dump(1) + "\n");
}

}  // namespace shrink
