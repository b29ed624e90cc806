// Pass: each root-to-leaf path's predicted retention, compounded from its stages'
// expected drops, against the budget.
#include "plan/passes.hpp"

#include "plan/budget.hpp"
#include "util/text.hpp"

#include <cstdio>

namespace shrink {

void check_budgets(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    diagnostics& diag = in.diag;
    const size_t n = p.stages.size();
    const budget_spec& b = r.budget;
    for (size_t i = 0; i < n; ++i) {
        if (!p.stages[i].children.empty()) continue;
        plan_path path;
        for (int at = int(i); at >= 0; at = p.stages[size_t(at)].parent) path.stages.insert(path.stages.begin(), at);
        std::vector<stage_drop> drops;
        for (int s : path.stages)
            if (p.stages[size_t(s)].changes_weights()) drops.push_back({p.stages[size_t(s)].expected_drop, p.stages[size_t(s)].kind});
        path.predicted_retention = predict_retention(drops, b.higher_is_better, b.interaction_penalty);
        path.required_retention = required_retention(b, p.baseline);
        path.ok = !b.present || path.predicted_retention >= path.required_retention;
        if (!path.ok) {
            std::string detail;
            for (int s : path.stages) {
                const planned_stage& st = p.stages[size_t(s)];
                if (st.expected_drop > 0) {
                    char buf[160];
                    std::snprintf(buf, sizeof buf, "%s%s %.2f%% (%s)", detail.empty() ? "" : ", ", st.spec->id.c_str(),
                                  100 * st.expected_drop, st.drop_source.c_str());
                    detail += buf;
                }
            }
            char buf[256];
            std::snprintf(buf, sizeof buf, "predicted retention %.4f is below the budget's %.4f", path.predicted_retention,
                          path.required_retention);
            diag.error(b.mark, "the path ending at stage '" + p.stages[i].spec->id + "': " + buf + "; expected drops: " + detail +
                                   (b.interaction_penalty > 0 ? " with interaction penalty " + format_double(b.interaction_penalty) : "") +
                                   ". Relax the budget, choose gentler params, or set expected_drop from a measurement");
        }
        p.paths.push_back(std::move(path));
    }
    if (b.present && b.max_abs_drop && !p.baseline)
        p.notes.push_back("the absolute budget (max_abs_drop) is checked when the baseline is measured: no earlier run recorded it");
}

}  // namespace shrink
