// Pass: each weight-changing stage's expected drop (the recipe's, else the ledger's
// measurement of the same chain of work, else the plugin's) and the measured baseline.
#include "plan/passes.hpp"

#include "util/files.hpp"
#include "util/random.hpp"
#include "util/text.hpp"

#include <cmath>

namespace shrink {

void expected_drops(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    const ledger& measured = in.measured;
    diagnostics& diag = in.diag;
    const size_t n = p.stages.size();
    // Expected drops: the recipe's, else a measurement of the same work in the ledger, else the plugin's.
    std::vector<std::string> chain_text(n);
    for (int i : p.order) {
        planned_stage& st = p.stages[size_t(i)];
        std::string text = st.parent < 0 ? "" : chain_text[size_t(st.parent)];
        if (st.kind != "evaluator") {
            text += "\n" + st.spec->use;
            for (const resolved_param& rp : st.params) text += " " + rp.name + "=" + rp.text;
            if (st.measures())
                text += " calibration=" + r.calibration.split + "/" + std::to_string(r.calibration.samples) + "/" +
                        std::to_string(derive_seed(r.seed, "data.calibration")) + "/" + r.calibration.path +
                        (r.calibration.is_text() ? " " + r.calibration.identity() + " tokenizer=" + r.tokenizer : "");
        }
        chain_text[size_t(i)] = text;
        st.chain_key = sha256_hex("model=" + p.model_sha256 + "\nmetric=" + r.budget.metric + text);
        if (!st.changes_weights()) continue;
        if (st.spec->expected_drop) {
            st.expected_drop = *st.spec->expected_drop;
            st.drop_source = "recipe";
        } else if (auto m = measured.find(st.chain_key)) {
            st.expected_drop = std::max(0.0, m->value);
            st.drop_source = "ledger (measured " + m->recorded + ", " + std::to_string(m->runs) + (m->runs == 1 ? " run)" : " runs)");
        } else if (st.type) {
            std::vector<shrink_param_value> storage;
            const shrink_params cp = c_params(st.params, storage);
            shrink_error error{};
            double drop = 0;
            const shrink_stage_type& t = *st.type->type;
            if (t.expected_drop(t.state, &cp, &drop, &error) != SHRINK_OK)
                diag.error(st.spec->use_mark, "stage '" + st.spec->id + "': the plugin could not estimate its accuracy cost: " + error.message);
            else if (!std::isfinite(drop) || drop < 0 || drop > 1)
                diag.error(st.spec->use_mark, "stage '" + st.spec->id + "': the plugin estimated a drop of " + format_double(drop) + ", outside [0, 1]");
            st.expected_drop = drop;
            st.drop_source = "plugin";
        }
    }
    for (const planned_stage& st : p.stages)
        if (st.kind == "evaluator")
            if (auto b = measured.find(baseline_key(p, st))) {
                p.baseline = b->value;
                break;
            }
}

}  // namespace shrink
