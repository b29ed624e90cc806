// The passes make_plan runs, in order, each in its own file. Each reads the plan the passes
// before it filled in and reports problems to the shared diagnostics at their recipe marks.
#pragma once

#include "plan/plan.hpp"
#include "recipe/recipe.hpp"

namespace shrink {

struct plan_inputs {
    const recipe& r;
    const registry& plugins;
    const ledger& measured;
    diagnostics& diag;
};

void read_model(plan& p, plan_inputs& in);       // read_model.cpp: outline and sha256
void check_text_data(plan& p, plan_inputs& in);  // text_data.cpp: text data fits the model, tokenizer
void resolve_stages(plan& p, plan_inputs& in);   // resolve.cpp: types, params, facts, scope, device
void build_dag(plan& p, plan_inputs& in);        // dag.cpp: parents, cycles, execution order
void expected_drops(plan& p, plan_inputs& in);   // drops.cpp: chain keys, drops, baseline
void walk_facts(plan& p, plan_inputs& in);       // fact_walk.cpp: facts along every path
void check_budgets(plan& p, plan_inputs& in);    // paths.cpp: predicted retention per path
void estimate_memory(plan& p, plan_inputs& in);  // memory.cpp: peak memory per stage
void lint(plan& p, plan_inputs& in);             // lint.cpp: warnings

}  // namespace shrink
