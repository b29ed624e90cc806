#include "run/replay.hpp"

#include "hf/folder.hpp"

#include "plugins/registry.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

namespace shrink {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json(const fs::path& file) {
    try {
        return json::parse(read_file_bounded(file, 64u << 20));
    } catch (const json::exception& e) {
        throw input_error(source_mark{file.string(), 0, 0}, std::string("malformed JSON: ") + e.what());
    } catch (const std::runtime_error& e) {
        throw input_error(e.what());
    }
}

json finished_manifest(const fs::path& dir) {
    if (!fs::is_regular_file(dir / "manifest.json"))
        throw input_error(source_mark{dir.string(), 0, 0}, "not a run directory (no manifest.json)");
    json m = read_json(dir / "manifest.json");
    if (!fs::is_regular_file(dir / "report.json"))
        throw input_error(source_mark{dir.string(), 0, 0}, "the run did not finish (no report.json); use 'shrink run --resume'");
    return m;
}

std::string file_check(const std::string& what, const json& entry) {
    const std::string file = entry.value("file", "");
    const std::string recorded = entry.value("sha256", "");
    const bool folder = hf::is_model_folder(file);
    if (!folder && !fs::is_regular_file(file)) return what + " " + file + " is gone\n";
    const std::string now = folder ? hf::folder_sha256(file) : sha256_file(file);
    return now == recorded ? "" : what + " " + file + " changed since the run (sha256 " + recorded.substr(0, 12) + "... recorded, " + now.substr(0, 12) + "... now)\n";
}

std::vector<std::string> lines_of(const fs::path& file) {
    std::vector<std::string> out;
    std::istringstream in(fs::is_regular_file(file) ? read_file_bounded(file, 1u << 20) : std::string());
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

/// A minimal line diff (longest common subsequence), "- " and "+ " lines only.
std::string line_diff(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    const size_t n = a.size(), m = b.size();
    std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;) lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    std::string out;
    size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && a[i] == b[j]) ++i, ++j;
        else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) out += "  - " + a[i++] + "\n";
        else out += "  + " + b[j++] + "\n";
    }
    return out;
}

}  // namespace

std::string replay_blockers(const std::string& run_dir, const std::vector<std::string>& plugin_dirs) {
    finished_manifest(run_dir);
    return changed_inputs(run_dir, plugin_dirs);
}

std::string changed_inputs(const std::string& run_dir, const std::vector<std::string>& plugin_dirs) {
    if (!fs::is_regular_file(fs::path(run_dir) / "manifest.json"))
        throw input_error(source_mark{run_dir, 0, 0}, "not a run directory (no manifest.json)");
    const json m = read_json(fs::path(run_dir) / "manifest.json");
    std::string problems;
    problems += file_check("model", m.at("model"));
    if (m.contains("teacher")) problems += file_check("teacher", m["teacher"]);
    for (const json& d : m.value("data", json::array())) problems += file_check("data file", d);
    const registry plugins = discover_plugins(plugin_dirs);
    for (const json& pl : m.at("plugins")) {
        problems += file_check("plugin", pl);
        for (const json& type : pl.value("types", json::array())) {
            const stage_type_handle* h = plugins.find(type.get<std::string>());
            if (!h) problems += "stage type " + type.get<std::string>() + " is no longer provided by any plugin\n";
            else if (h->plugin->file != pl.value("file", ""))
                problems += "stage type " + type.get<std::string>() + " now comes from " + h->plugin->file + ", not " +
                            pl.value("file", "") + "\n";
        }
    }
    const std::string resolved = sha256_hex(read_file_bounded(fs::path(run_dir) / "recipe.yaml", 1u << 20));
    if (resolved != m.at("recipe").value("resolved_sha256", ""))
        problems += "the run's recipe.yaml changed since the run\n";
    return problems;
}

std::string compare_outputs(const std::string& original_dir, const std::string& replay_dir) {
    std::string out;
    const fs::path a = fs::path(original_dir) / "models", b = fs::path(replay_dir) / "models";
    std::vector<std::string> names;
    for (const fs::path& d : {a, b})
        if (fs::is_directory(d))
            for (const auto& f : fs::directory_iterator(d)) names.push_back(f.path().filename().string());
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const std::string& n : names) {
        if (!fs::exists(a / n) || !fs::exists(b / n)) out += "models/" + n + ": only in one run\n";
        else if (sha256_file(a / n) != sha256_file(b / n)) out += "models/" + n + ": bytes differ\n";
    }
    const json ra = read_json(fs::path(original_dir) / "report.json"), rb = read_json(fs::path(replay_dir) / "report.json");
    std::map<std::string, double> va, vb;
    for (const json& e : ra.at("results")) va[e.at("stage").get<std::string>()] = e.at("value").get<double>();
    for (const json& e : rb.at("results")) vb[e.at("stage").get<std::string>()] = e.at("value").get<double>();
    if (va != vb) out += "metrics differ\n";
    return out;
}

std::string diff_runs(const std::string& a_dir, const std::string& b_dir) {
    const fs::path a(a_dir), b(b_dir);
    for (const fs::path& d : {a, b})
        if (!fs::is_regular_file(d / "manifest.json"))
            throw input_error(source_mark{d.string(), 0, 0}, "not a run directory (no manifest.json)");
    const json ma = read_json(a / "manifest.json"), mb = read_json(b / "manifest.json");
    std::ostringstream out;
    auto section = [&](const std::string& title, const std::string& body) {
        if (!body.empty()) out << title << ":\n" << body;
    };
    section("recipe (resolved)", line_diff(lines_of(a / "recipe.yaml"), lines_of(b / "recipe.yaml")));

    std::string inputs;
    auto compare = [&](const std::string& what, const json& x, const json& y) {
        if (x != y) inputs += "  " + what + ": " + (x.is_null() ? "-" : x.dump()) + " -> " + (y.is_null() ? "-" : y.dump()) + "\n";
    };
    compare("model", ma.value("model", json()), mb.value("model", json()));
    compare("teacher", ma.value("teacher", json()), mb.value("teacher", json()));
    compare("data", ma.value("data", json()), mb.value("data", json()));
    section("inputs", inputs);

    std::string plugins;
    std::map<std::string, std::pair<json, json>> by_name;
    for (const json& p : ma.value("plugins", json::array())) by_name[p.value("name", "")].first = p;
    for (const json& p : mb.value("plugins", json::array())) by_name[p.value("name", "")].second = p;
    for (const auto& [name, pair] : by_name) {
        auto describe = [](const json& p) {
            return p.is_null() ? std::string("absent") : p.value("version", "") + " (" + p.value("sha256", "").substr(0, 12) + ")";
        };
        if (pair.first != pair.second && describe(pair.first) != describe(pair.second))
            plugins += "  " + name + ": " + describe(pair.first) + " -> " + describe(pair.second) + "\n";
    }
    section("plugins", plugins);

    std::string setup;
    for (const char* key : {"seed", "threads", "device", "stage_devices", "shrink_version", "host_cpu", "libraries", "stage_seeds"})
        if (ma.value(key, json()) != mb.value(key, json()))
            setup += std::string("  ") + key + ": " + ma.value(key, json()).dump() + " -> " + mb.value(key, json()).dump() + "\n";
    section("run setup", setup);

    std::string stages;
    if (fs::is_regular_file(a / "report.json") && fs::is_regular_file(b / "report.json")) {
        const json ra = read_json(a / "report.json"), rb = read_json(b / "report.json");
        std::map<std::string, std::pair<json, json>> st;
        for (const json& s : ra.at("stages")) st[s.value("id", "")].first = s;
        for (const json& s : rb.at("stages")) st[s.value("id", "")].second = s;
        for (const auto& [id, pair] : st) {
            if (pair.first.is_null() || pair.second.is_null()) {
                stages += "  " + id + ": only in " + (pair.first.is_null() ? b_dir : a_dir) + "\n";
                continue;
            }
            std::string line;
            for (const char* key : {"type", "status", "params", "size_bytes"})
                if (pair.first.value(key, json()) != pair.second.value(key, json()))
                    line += std::string(" ") + key + " " + pair.first.value(key, json()).dump() + " -> " + pair.second.value(key, json()).dump() + ";";
            json ra_results = pair.first.value("results", json::object()), rb_results = pair.second.value("results", json::object());
            for (auto it = ra_results.begin(); it != ra_results.end(); ++it)
                if (it.key() != "batch_latency_ms" && rb_results.value(it.key(), json()) != it.value())
                    line += " " + it.key() + " " + it.value().dump() + " -> " + rb_results.value(it.key(), json()).dump() + ";";
            if (!line.empty()) stages += "  " + id + ":" + line + "\n";
        }
    }
    section("stages", stages);
    const std::string text = out.str();
    return text.empty() ? "no differences (timings aside)\n" : text;
}

}  // namespace shrink
