// Pass: what is legal but probably wrong, as warnings.
#include "plan/passes.hpp"

#include <algorithm>

namespace shrink {

void lint(plan& p, plan_inputs& in) {
    const budget_spec& b = in.r.budget;
    const size_t n = p.stages.size();
    auto warn = [&](const source_mark& at, const std::string& m) {
        std::string text = format_diagnostic(at, m);
        text.replace(text.find(": error: "), 9, ": warning: ");
        p.warnings.push_back(text);
    };
    for (const plan_path& path : p.paths) {
        const planned_stage& leaf = p.stages[size_t(path.stages.back())];
        const bool changed = std::any_of(path.stages.begin(), path.stages.end(),
                                         [&](int s) { return p.stages[size_t(s)].changes_weights(); });
        if (leaf.kind == "evaluator" && !changed)
            warn(leaf.spec->use_mark, "evaluator '" + leaf.spec->id +
                                          "' measures the model before any stage changes it; the baseline already does that");
        if (b.present && changed && leaf.kind != "evaluator")
            warn(leaf.spec->use_mark, "the path ending at '" + leaf.spec->id +
                                          "' has no evaluator after its last change: its budget is predicted but never measured");
    }
    for (size_t i = 0; i < n; ++i)
        if (p.stages[i].measures() && !p.stages[i].facts_used)
            warn(p.stages[i].spec->use_mark,
                 p.stages[i].kind == "analyzer"
                     ? "analyzer '" + p.stages[i].spec->id +
                           "' measures what no later stage uses; remove it, or use it (e.g. quantizer.mixed after analyzer.sensitivity)"
                     : "calibrator '" + p.stages[i].spec->id +
                           "' measures statistics no later stage uses; remove it, or use them (e.g. quantizer.rtn with "
                           "activation_bits: 8)");
}

}  // namespace shrink
