#include "run/baseline.hpp"

#include "run/stage_run.hpp"
#include "util/console.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

namespace shrink {

std::string evaluator_key(const planned_stage& st) {
    std::string k = st.spec->use;
    for (const resolved_param& rp : st.params) k += "|" + rp.name + "=" + rp.text;
    return k;
}

baselines measure_baselines(const plan& p, const model& original, const std::shared_ptr<const model>& teacher, data_access& data,
                            const stage_store& store, bool use_cache, const run_inputs& inputs, ledger& measured,
                            uint64_t original_size) {
    const recipe& r = *p.source;
    baselines b;
    for (int i : p.order) {
        const planned_stage& st = p.stages[size_t(i)];
        if (st.kind != "evaluator" || b.value.count(evaluator_key(st))) continue;
        // The baseline is an evaluator applied to the input model: stored like a stage.
        const std::string key = sha256_hex("baseline\n" + stage_key(st, "model:" + p.model_sha256, inputs));
        std::string source;
        model_state state{original, {}, teacher, false};
        std::map<std::string, double> results;
        if (auto stored = store.find(key, use_cache, source)) {
            results = stored->results;
            console::get().info("baseline: " + r.budget.metric + " of the input model with " + st.spec->use + ", reused from the " +
                            (source == "cache" ? "stage cache" : "run's checkpoint"));
        } else {
            console::get().info("baseline: measuring " + r.budget.metric + " of the input model with " + st.spec->use);
            results = run_stage(st, state, data, store.artifact_pool());
            store.put(key, nullptr, results, "baseline:" + st.spec->id);
        }
        auto metric = results.find(r.budget.metric);
        if (metric == results.end())
            throw stage_error("evaluator " + st.spec->use + " reported no '" + r.budget.metric + "' metric");
        b.value[evaluator_key(st)] = metric->second;
        const auto se = results.find(r.budget.metric + "_stderr");
        measured.record(baseline_key(p, st), metric->second, se == results.end() ? 0.0 : se->second,
                        {{"baseline", st.spec->use}, {"model_sha256", p.model_sha256}, {"metric", r.budget.metric}});
        if (b.first.is_null())
            b.first = {{"metric", r.budget.metric}, {"value", metric->second}, {"size_bytes", original_size}, {"evaluator", st.spec->use}};
    }
    return b;
}

}  // namespace shrink
