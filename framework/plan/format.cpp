// The plan as text (`shrink plan`), JSON and a Graphviz digraph.
#include "plan/passes.hpp"

#include "plan/facts.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <sstream>

namespace shrink {

namespace {
const char* time_word(int32_t t) {
    switch (t) {
        case SHRINK_TIME_DATA: return "data passes";
        case SHRINK_TIME_SOLVE: return "solves";
        case SHRINK_TIME_TRAINING: return "training";
        default: return "weights";
    }
}
}  // namespace

std::string format_plan(const plan& p, bool detailed) {
    std::ostringstream out;
    const recipe& r = *p.source;
    out << "plan for '" << r.name << "' (" << r.file << "): " << p.stages.size() << " stages, " << p.paths.size()
        << (p.paths.size() == 1 ? " path" : " paths") << ", seed " << r.seed << "\n";
    for (const std::string& note : p.notes) out << "note: " << note << "\n";
    out << "\nexecution order:\n";
    int step = 1;
    for (int i : p.order) {
        const planned_stage& s = p.stages[size_t(i)];
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2f%%", 100 * s.expected_drop);
        out << "  " << step++ << ". " << s.spec->id << "  " << s.spec->use << "  after "
            << (s.parent < 0 ? std::string("model") : p.stages[size_t(s.parent)].spec->id) << "  on " << s.device;
        if (s.changes_weights()) out << "  expected drop " << buf << " (" << s.drop_source << ")";
        if (s.children.size() > 1) out << "  [branches: " << s.children.size() << "]";
        out << "\n";
        if (detailed) {
            std::string params;
            for (const resolved_param& rp : s.params)
                params += (params.empty() ? "" : ", ") + rp.name + "=" + (rp.type == SHRINK_PARAM_LAYERS && rp.text.empty() ? "all" : rp.text) +
                          (rp.from_default ? "*" : "");
            if (!params.empty()) out << "       params: " << params << "\n";
            auto facts = [&](const char* what, const std::set<std::string>& set) {
                if (set.empty()) return;
                out << "       " << what << ":";
                for (const std::string& f : set) out << " " << f;
                out << "\n";
            };
            facts("requires", s.requires_facts);
            facts("provides", s.provides_facts);
            facts("invalidates", s.invalidates_facts);
            facts("forbids", s.forbids_facts);
            out << "       peak memory ~" << format_bytes(s.peak_memory) << " (" << s.memory_detail << "); time grows with "
                << time_word(s.time_class) << "\n";
        }
    }
    out << "\npredicted " << r.budget.metric << " per path";
    if (r.budget.present) {
        out << " (budget:";
        const bool up = !r.budget.higher_is_better;  // lower is better: the bound is how far it may rise
        if (r.budget.max_drop) out << (up ? " max_increase " : " max_drop ") << format_double(*r.budget.max_drop);
        if (r.budget.max_abs_drop) out << (up ? " max_abs_increase " : " max_abs_drop ") << format_double(*r.budget.max_abs_drop);
        if (r.budget.interaction_penalty > 0) out << ", interaction penalty " << format_double(r.budget.interaction_penalty);
        out << (r.budget.higher_is_better ? "" : ", lower is better") << ")";
    }
    out << ":\n";
    for (const plan_path& path : p.paths) {
        out << "  model";
        for (int s : path.stages) {
            const planned_stage& st = p.stages[size_t(s)];
            out << " -> " << st.spec->id;
            if (st.changes_weights()) {
                char buf[64];
                std::snprintf(buf, sizeof buf, " (-%.2f%% %s)", 100 * st.expected_drop,
                              st.drop_source.substr(0, st.drop_source.find(' ')).c_str());
                out << buf;
            }
        }
        char buf[128];
        if (!r.budget.present) std::snprintf(buf, sizeof buf, "\n    retention %.4f  (no budget)\n", path.predicted_retention);
        else std::snprintf(buf, sizeof buf, "\n    retention %.4f  budget %.4f  %s\n", path.predicted_retention,
                           path.required_retention, path.ok ? "OK" : "OVER");
        out << buf;
    }
    if (detailed) out << "\nmemory limit: " << format_bytes(p.memory_limit) << " (" << p.memory_limit_source << ")\n(* = default value)\n";
    return out.str();
}

std::string format_plan_json(const plan& p) {
    using json = nlohmann::json;
    const recipe& r = *p.source;
    json stages = json::array();
    for (int i : p.order) {
        const planned_stage& s = p.stages[size_t(i)];
        json params = json::object();
        for (const resolved_param& rp : s.params) params[rp.name] = {{"value", rp.text}, {"default", rp.from_default}};
        stages.push_back({{"id", s.spec->id}, {"type", s.spec->use}, {"kind", s.kind},
                          {"after", s.parent < 0 ? json(nullptr) : json(p.stages[size_t(s.parent)].spec->id)},
                          {"device", s.device}, {"params", params},
                          {"expected_drop", s.changes_weights() ? json(s.expected_drop) : json(nullptr)},
                          {"expected_drop_source", s.drop_source},
                          {"requires", s.requires_facts}, {"provides", s.provides_facts},
                          {"invalidates", s.invalidates_facts}, {"forbids", s.forbids_facts},
                          {"peak_memory_bytes", s.peak_memory}, {"time_class", time_word(s.time_class)}});
    }
    json paths = json::array();
    for (const plan_path& path : p.paths) {
        json ids = json::array();
        for (int s : path.stages) ids.push_back(p.stages[size_t(s)].spec->id);
        paths.push_back({{"stages", ids}, {"predicted_retention", path.predicted_retention},
                         {"required_retention", path.required_retention}, {"ok", path.ok}});
    }
    json budget = nullptr;
    if (r.budget.present)
        budget = {{"metric", r.budget.metric}, {"higher_is_better", r.budget.higher_is_better},
                  {"max_drop", r.budget.max_drop ? json(*r.budget.max_drop) : json(nullptr)},
                  {"max_abs_drop", r.budget.max_abs_drop ? json(*r.budget.max_abs_drop) : json(nullptr)},
                  {"interaction_penalty", r.budget.interaction_penalty}};
    return json{{"recipe", r.file}, {"name", r.name}, {"seed", r.seed}, {"model", {{"file", r.model}, {"sha256", p.model_sha256}}},
                {"budget", budget}, {"baseline", p.baseline ? json(*p.baseline) : json(nullptr)}, {"stages", stages},
                {"paths", paths}, {"memory_limit_bytes", p.memory_limit}, {"notes", p.notes}, {"warnings", p.warnings}}
               .dump(2) + "\n";
}

std::string format_plan_dot(const plan& p) {
    std::ostringstream out;
    auto quote = [](const std::string& s) {
        std::string q = "\"";
        for (char c : s) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        return q + "\"";
    };
    out << "digraph " << quote(p.source->name) << " {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n";
    out << "  model [shape=ellipse, label=" << quote("model\n" + p.model_sha256.substr(0, 12)) << "];\n";
    for (int i : p.order) {
        const planned_stage& s = p.stages[size_t(i)];
        std::string label = s.spec->id + "\n" + s.spec->use;
        if (s.changes_weights()) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "\n-%.2f%%", 100 * s.expected_drop);
            label += buf;
        }
        out << "  " << quote(s.spec->id) << " [label=" << quote(label) << (s.kind == "evaluator" ? ", shape=note" : "") << "];\n";
        out << "  " << (s.parent < 0 ? std::string("model") : quote(p.stages[size_t(s.parent)].spec->id)) << " -> "
            << quote(s.spec->id) << ";\n";
    }
    for (const plan_path& path : p.paths) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "retention %.4f %s", path.predicted_retention, path.ok ? "OK" : "OVER");
        const std::string leaf = p.stages[size_t(path.stages.back())].spec->id;
        out << "  " << quote(leaf + ".budget") << " [shape=plaintext, label=" << quote(buf) << "];\n  " << quote(leaf)
            << " -> " << quote(leaf + ".budget") << " [style=dotted, arrowhead=none];\n";
    }
    out << "}\n";
    return out.str();
}

}  // namespace shrink
