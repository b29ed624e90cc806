#include "run/stage_store.hpp"

#include "model/safetensors.hpp"
#include "util/console.hpp"
#include "util/files.hpp"

#include <nlohmann/json.hpp>

#include <set>

namespace shrink {

namespace fs = std::filesystem;
using json = nlohmann::json;

stage_store::stage_store(fs::path checkpoints, fs::path cache) : checkpoints_(std::move(checkpoints)), cache_(std::move(cache)) {}

fs::path stage_store::default_cache() { return cache_path("SHRINK_CACHE", "stages"); }

namespace {

json artifacts_json(const artifact_map& artifacts) {
    json out = json::array();
    for (const auto& [k, a] : artifacts) {
        const artifact_meta& m = a->meta();
        out.push_back({{"layer", k.first}, {"key", k.second}, {"dtype", artifact_dtype_name(m.dtype)}, {"shape", m.shape},
                       {"bytes", m.bytes}, {"sha256", m.sha256}, {"facts", m.facts}});
    }
    return out;
}

/// The artifacts an entry lists, each reading its file in `pool` lazily.
artifact_map artifacts_from(const json& list, const fs::path& pool) {
    artifact_map out;
    for (const json& e : list) {
        artifact_meta m;
        m.dtype = parse_artifact_dtype(e.at("dtype").get<std::string>());
        if (!m.dtype) throw std::runtime_error("artifact type '" + e.at("dtype").get<std::string>() + "' is unknown");
        m.shape = e.at("shape").get<std::vector<uint64_t>>();
        m.bytes = e.at("bytes").get<uint64_t>();
        m.sha256 = e.at("sha256").get<std::string>();
        m.facts = e.at("facts").get<std::set<std::string>>();
        // The name comes from a file someone could have edited: only a hash names a file.
        if (m.sha256.size() != 64 || m.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
            throw std::runtime_error("artifact sha256 '" + m.sha256 + "' is not a sha256");
        out[{e.at("layer").get<std::string>(), e.at("key").get<std::string>()}] =
            std::make_shared<const artifact>(std::move(m), pool / e.at("sha256").get<std::string>());
    }
    return out;
}

std::optional<stored_stage> load_entry(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / "state.json", ec)) return std::nullopt;
    try {
        const json j = json::parse(read_file_bounded(dir / "state.json", 1u << 30));
        stored_stage s;
        s.results = j.at("results").get<std::map<std::string, double>>();
        if (fs::is_regular_file(dir / "model.safetensors", ec)) {
            model_state st{load_model(dir / "model.safetensors"), artifacts_from(j.at("artifacts"), dir.parent_path() / "artifacts"),
                           nullptr, false};
            if (fs::is_regular_file(dir / "teacher.safetensors", ec)) {
                st.teacher = std::make_shared<const model>(load_model(dir / "teacher.safetensors"));
                st.teacher_from_stage = true;
            }
            s.state = std::move(st);
        }
        return s;
    } catch (const std::exception& e) {
        console::get().warning(dir.string() + ": ignoring an unreadable stage entry (" + e.what() + ")");
        return std::nullopt;
    }
}

/// Hard links when the cache shares the file system, else a copy; the state file last.
void link_entry(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    if (fs::is_regular_file(to / "state.json", ec)) return;
    fs::create_directories(to, ec);
    if (ec) throw std::runtime_error(to.string() + ": " + ec.message());
    for (const char* name : {"model.safetensors", "teacher.safetensors", "state.json"}) {
        if (!fs::exists(from / name, ec)) continue;
        const fs::path temp = to / (std::string(name) + ".tmp");
        fs::remove(temp, ec);
        fs::create_hard_link(from / name, temp, ec);
        if (ec) fs::copy_file(from / name, temp, fs::copy_options::overwrite_existing, ec);
        if (ec) throw std::runtime_error((to / name).string() + ": " + ec.message());
        fs::rename(temp, to / name, ec);
        if (ec) throw std::runtime_error((to / name).string() + ": " + ec.message());
    }
}

}  // namespace

std::optional<stored_stage> stage_store::find(const std::string& key, bool use_cache, std::string& source) const {
    if (auto s = load_entry(checkpoints_ / key)) {
        source = "checkpoint";
        return s;
    }
    if (use_cache && !cache_.empty())
        if (auto s = load_entry(cache_ / key)) {
            source = "cache";
            return s;
        }
    return std::nullopt;
}

void stage_store::put(const std::string& key, const model_state* state, const std::map<std::string, double>& results,
                      const std::string& stage_id) const {
    const fs::path dir = checkpoints_ / key;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error(dir.string() + ": error: cannot create the checkpoint directory: " + ec.message());
    json artifacts = json::array();
    if (state) {
        save_model(state->net, dir / "model.safetensors");
        if (state->teacher_from_stage && state->teacher) save_model(*state->teacher, dir / "teacher.safetensors");
        for (const auto& [k, a] : state->artifacts) place_artifact(*a, artifact_pool());
        artifacts = artifacts_json(state->artifacts);
    }
    write_file_atomic(dir / "state.json",
                      json{{"stage", stage_id}, {"key", key}, {"results", results}, {"artifacts", artifacts}}.dump() + "\n");
    if (cache_.empty()) return;
    try {
        // Artifacts first: a cache entry whose state.json is there is complete.
        if (state)
            for (const auto& [k, a] : state->artifacts) place_artifact(*a, cache_ / "artifacts");
        link_entry(dir, cache_ / key);
    } catch (const std::exception& e) {
        console::get().warning(std::string("the stage cache was not updated: ") + e.what());
    }
}

}  // namespace shrink
