#include "run/report.hpp"

#include "plan/budget.hpp"
#include "util/console.hpp"
#include "util/text.hpp"

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

namespace shrink {

namespace fs = std::filesystem;
using json = nlohmann::json;

void teach_ledger(const plan& p, const json& results, ledger& measured) {
    const recipe& r = *p.source;
    std::map<std::string, const json*> by_stage;
    for (const json& e : results) by_stage[e["stage"].get<std::string>()] = &e;
    for (const plan_path& path : p.paths) {
        double before = 1;
        std::vector<int> lossy;
        for (int s : path.stages) {
            const planned_stage& st = p.stages[size_t(s)];
            if (st.changes_weights()) lossy.push_back(s);
            auto e = by_stage.find(st.spec->id);
            if (st.kind != "evaluator" || e == by_stage.end()) continue;
            const double now = (*e->second)["retention"].get<double>();
            if (lossy.size() == 1) {
                const planned_stage& one = p.stages[size_t(lossy[0])];
                json params = json::object();
                for (const resolved_param& rp : one.params) params[rp.name] = rp.text;
                const double se = e->second->contains("stderr") ? (*e->second)["stderr"].get<double>() : 0.0;
                measured.record(one.chain_key, drop_between(before, now, r.budget.higher_is_better), se,
                                {{"type", one.spec->use}, {"params", params}, {"model_sha256", p.model_sha256},
                                 {"metric", r.budget.metric}, {"recipe", fs::absolute(r.file).string()}});
            }
            before = now;
            lossy.clear();
        }
    }
}

json report_json(const plan& p, const std::vector<stage_outcome>& outcome, const json& baseline, const json& results) {
    const recipe& r = *p.source;
    json stages = json::array();
    for (size_t i = 0; i < p.stages.size(); ++i) {
        const planned_stage& st = p.stages[i];
        const stage_outcome& o = outcome[i];
        json params = json::object();
        for (const resolved_param& rp : st.params) params[rp.name] = rp.text;
        stages.push_back({{"id", st.spec->id}, {"type", st.spec->use}, {"status", o.status}, {"message", o.message},
                          {"seconds", o.seconds}, {"results", o.results}, {"size_bytes", o.size_bytes}, {"params", params},
                          {"expected_drop", st.expected_drop}, {"expected_drop_source", st.drop_source},
                          {"predicted_peak_memory_bytes", st.peak_memory}, {"measured_peak_rss_bytes", o.peak_rss},
                          {"started", o.started}, {"ended", o.ended}});
    }
    return json{{"recipe", r.name}, {"baseline", baseline}, {"results", results}, {"stages", stages},
                {"budget", r.budget.present ? json{{"metric", r.budget.metric}, {"higher_is_better", r.budget.higher_is_better},
                                                   {"max_drop", r.budget.max_drop ? json(*r.budget.max_drop) : json(nullptr)},
                                                   {"max_abs_drop", r.budget.max_abs_drop ? json(*r.budget.max_abs_drop) : json(nullptr)},
                                                   {"interaction_penalty", r.budget.interaction_penalty}}
                                            : json(nullptr)}};
}

void print_summary(const plan& p, const json& baseline, const json& results, uint64_t original_size) {
    const recipe& r = *p.source;
    if (!baseline.is_null()) {
        console::get().info("");
        char line[256];
        std::snprintf(line, sizeof line, "%-12s %12s %7s %10s %10s %10s %17s  %s", "stage", "size", "ratio", r.budget.metric.c_str(),
                      "predicted", "retention", "95% interval", "within budget");
        console::get().info(line);
        std::snprintf(line, sizeof line, "%-12s %12llu %6.2fx %10.4f %10s %10s %17s  %s", "(baseline)", (unsigned long long)original_size,
                      1.0, baseline["value"].get<double>(), "", "1.0000", "", "-");
        console::get().info(line);
        for (const json& e : results) {
            const double size = e["size_bytes"].get<double>();
            std::string interval;
            if (e.contains("retention_interval"))
                interval = format_number("%.4f", e["retention_interval"][0].get<double>()) + "-" + format_number("%.4f", e["retention_interval"][1].get<double>());
            std::string verdict = e["within_budget"].get<bool>() ? "yes" : "NO";
            if (e.value("verdict_within_noise", false)) verdict += " (within noise)";
            std::snprintf(line, sizeof line, "%-12s %12llu %6.2fx %10.4f %10s %10.4f %17s  %s", e["stage"].get<std::string>().c_str(),
                          (unsigned long long)e["size_bytes"].get<uint64_t>(), double(original_size) / size, e["value"].get<double>(),
                          e.contains("predicted_retention") ? format_number("%.4f", e["predicted_retention"].get<double>()).c_str() : "",
                          e["retention"].get<double>(), interval.c_str(), verdict.c_str());
            console::get().info(line);
        }
    }
}

}  // namespace shrink
