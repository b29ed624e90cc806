#include "plan/plan.hpp"

#include "plan/passes.hpp"
#include "util/files.hpp"

#include <cstdio>

namespace shrink {

std::set<std::string> root_facts(const recipe& r) {
    std::set<std::string> f{"model"};
    if (r.calibration.present) f.insert("calibration_data");
    if (r.evaluation.present) f.insert("evaluation_data");
    if (r.evaluation.is_text()) f.insert("text_evaluation_data");
    if (r.training.present) f.insert("training_data");
    // The model on a path can teach until it is quantized (see make_plan).
    f.insert("teacher");
    return f;
}

shrink_params c_params(const std::vector<resolved_param>& params, std::vector<shrink_param_value>& storage) {
    storage.clear();
    for (const resolved_param& p : params)
        storage.push_back({p.name.c_str(), p.type, p.int_value, p.float_value, p.text.c_str()});
    return {static_cast<uint32_t>(storage.size()), storage.data()};
}

std::string format_bytes(uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = double(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

std::string baseline_key(const plan& p, const planned_stage& evaluator) {
    std::string text = "baseline\nmodel=" + p.model_sha256 + "\nmetric=" + p.source->budget.metric + "\n" + evaluator.spec->use;
    for (const resolved_param& rp : evaluator.params) text += " " + rp.name + "=" + rp.text;
    const data_source& d = p.source->evaluation;
    text += "\nevaluation=" + d.identity();
    if (d.is_text()) text += "\ntokenizer=" + p.source->tokenizer;
    return sha256_hex(text);
}

plan make_plan(const recipe& r, const registry& plugins, const ledger& measured) {
    plan p;
    p.source = &r;
    diagnostics diag;
    plan_inputs in{r, plugins, measured, diag};
    // In order: each pass reads what the ones before it settled. A pass that cannot let the
    // next ones run (no model, a cycle) throws with every problem found so far.
    read_model(p, in);
    check_text_data(p, in);
    resolve_stages(p, in);
    build_dag(p, in);
    expected_drops(p, in);
    walk_facts(p, in);
    check_budgets(p, in);
    estimate_memory(p, in);
    lint(p, in);
    diag.throw_if_any();
    return p;
}

}  // namespace shrink
