#include "run/preview.hpp"

#include "run/data_access.hpp"
#include "run/manifest.hpp"
#include "run/stage_run.hpp"
#include "run/stage_store.hpp"
#include "util/text.hpp"

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>

namespace shrink {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// A directory for what a previewed stage stores as artifacts, removed with it.
class scratch_dir {
  public:
    scratch_dir() {
        std::string pattern = (fs::temp_directory_path() / "shrink-preview-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory for the plan's preview");
        path_ = pattern;
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

}  // namespace

std::vector<stage_preview> preview_stages(const plan& p, bool use_cache) {
    std::vector<int> wanted;
    for (int i : p.order)
        if (p.stages[size_t(i)].type->type->flags & SHRINK_STAGE_PREVIEW) wanted.push_back(i);
    if (wanted.empty()) return {};
    const recipe& r = *p.source;
    data_access data(r, p.tokenizer);
    // The keys the run will compute: the same key finds the same bytes in the cache.
    const std::vector<std::string> keys = stage_keys(p, gather_run_inputs(p, data));
    const fs::path cache = use_cache ? stage_store::default_cache() : fs::path();
    const stage_store store(cache, cache);
    const scratch_dir scratch;
    std::optional<model> original;  // read only when a previewed stage starts from it

    std::vector<stage_preview> out;
    for (int i : wanted) {
        const planned_stage& st = p.stages[size_t(i)];
        stage_preview pv{st.spec->id, "model", "ok", {}, {}, {}};
        // An evaluator's output is its parent's model: look further up for one that holds it.
        int from = st.parent;
        while (from >= 0 && p.stages[size_t(from)].kind == "evaluator") from = p.stages[size_t(from)].parent;
        std::optional<model_state> state;
        if (from < 0) {
            if (!original) original = load_recipe_model(r.model);
            state = model_state{*original, {}, nullptr, false};
        } else {
            pv.from = p.stages[size_t(from)].spec->id;
            std::string source;
            std::optional<stored_stage> stored = cache.empty() ? std::nullopt : store.find(keys[size_t(from)], true, source);
            if (!stored || !stored->state) {
                pv.status = "not_cached";
                pv.message = cache.empty() ? "the stage cache is off"
                                           : "'" + pv.from + "' is not in the stage cache (" + cache.string() +
                                                 ") for this recipe's model, data, plugins and threads";
                out.push_back(std::move(pv));
                continue;
            }
            state = std::move(*stored->state);
        }
        try {
            pv.results = run_stage(st, *state, data, scratch.path(), [&](int32_t level, const std::string& line) {
                pv.log.push_back((level >= SHRINK_LOG_WARNING ? "warning: " : "") + line);
            });
        } catch (const std::exception& e) {
            pv.status = "failed";
            pv.message = e.what();
        }
        out.push_back(std::move(pv));
    }
    return out;
}

std::string format_previews(const std::vector<stage_preview>& previews) {
    if (previews.empty()) return {};
    std::ostringstream s;
    s << "\npreview (stages that allow it, run now on the input they will get):\n";
    for (const stage_preview& pv : previews) {
        s << "  " << pv.stage;
        if (pv.status == "not_cached") {
            s << ": not previewed: " << pv.message << "\n";
            continue;
        }
        s << (pv.from == "model" ? " on the input model" : " on the cached output of '" + pv.from + "'") << ":\n";
        for (const std::string& entry : pv.log) {
            std::istringstream lines(entry);
            for (std::string line; std::getline(lines, line);) s << "    " << line << "\n";
        }
        if (pv.status == "failed") {
            s << "    the run will fail here: " << pv.message << "\n";
            continue;
        }
        // Names with a dot are per-layer results (bits.LAYER): the log shows them, the JSON
        // plan lists them.
        std::string summary;
        size_t per_layer = 0;
        for (const auto& [name, value] : pv.results) {
            if (name.find('.') != std::string::npos) {
                ++per_layer;
                continue;
            }
            summary += (summary.empty() ? "" : ", ") + name + " " + format_number("%.6g", value);
        }
        if (!summary.empty()) s << "    results: " << summary << (per_layer ? " (and " + std::to_string(per_layer) + " per layer)" : "") << "\n";
    }
    return s.str();
}

json previews_json(const std::vector<stage_preview>& previews) {
    json out = json::array();
    for (const stage_preview& pv : previews) {
        json e = {{"stage", pv.stage}, {"from", pv.from}, {"status", pv.status}};
        if (!pv.message.empty()) e["message"] = pv.message;
        if (pv.status != "not_cached") {
            e["log"] = pv.log;
            e["results"] = pv.results;
        }
        out.push_back(e);
    }
    return out;
}

}  // namespace shrink
