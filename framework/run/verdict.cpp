#include "run/verdict.hpp"

#include "plan/budget.hpp"
#include "util/console.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cstdio>

namespace shrink {

using json = nlohmann::json;

std::optional<json> judge_evaluator(const plan& p, int i, stage_outcome& o, double base) {
    const recipe& r = *p.source;
    const planned_stage& st = p.stages[size_t(i)];
    json entry{{"stage", st.spec->id}, {"metric", r.budget.metric}, {"size_bytes", o.size_bytes}};
    json path = json::array();
    for (int at = i; at >= 0; at = p.stages[size_t(at)].parent) path.insert(path.begin(), p.stages[size_t(at)].spec->id);
    entry["path"] = path;
    std::vector<stage_drop> drops;  // predicted retention of the path up to this evaluator
    for (int at = i; at >= 0; at = p.stages[size_t(at)].parent)
        if (p.stages[size_t(at)].changes_weights()) drops.push_back({p.stages[size_t(at)].expected_drop, p.stages[size_t(at)].kind});
    entry["predicted_retention"] = predict_retention(drops, r.budget.higher_is_better, r.budget.interaction_penalty);
    auto metric = o.results.find(r.budget.metric);
    if (metric == o.results.end()) {
        o.status = "failed";
        o.message = "evaluator reported no '" + r.budget.metric + "' metric";
        std::fprintf(stderr, "error: stage '%s': %s\n", st.spec->id.c_str(), o.message.c_str());
        return std::nullopt;
    }
    const bool hib = r.budget.higher_is_better;
    const double retention = retention_of(base, metric->second, hib);
    const double required = required_retention(r.budget, base);
    const bool within = within_budget(r.budget, base, metric->second);
    entry["value"] = metric->second;
    entry["retention"] = retention;
    entry["required_retention"] = required;
    entry["within_budget"] = within;
    // Sampling noise: a 95% interval of the measured retention, and whether the
    // budget's threshold falls inside it (the verdict could flip on other samples).
    if (auto se = o.results.find(r.budget.metric + "_stderr"); se != o.results.end()) {
        const double a = retention_of(base, metric->second - 1.96 * se->second, hib);
        const double z = retention_of(base, metric->second + 1.96 * se->second, hib);
        entry["stderr"] = se->second;
        entry["retention_interval"] = {std::min(a, z), std::max(a, z)};
        entry["verdict_within_noise"] = r.budget.present && required >= std::min(a, z) && required <= std::max(a, z);
    }
    entry["extra"] = o.results;
    if (!within) {
        o.status = "over_budget";
        console::get().info("  " + st.spec->id + ": retention " + format_number("%.4f", retention) + " is below the budget's " +
                            format_number("%.4f", required) + "; stopping this branch");
    }
    return entry;
}

}  // namespace shrink
