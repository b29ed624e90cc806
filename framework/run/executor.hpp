// Runs a plan: stages in topological order, each branch on its own copy of the model
// state, evaluators checked against the budget as they report, and a run directory
// with the resolved recipe, manifest.json, report.json and the output models.
#pragma once

#include "plan/plan.hpp"

#include <string>

namespace shrink {

struct run_options {
    std::string out_dir;  // empty: runs/<name>-<UTC time> beside the current directory
    int threads = 0;
    bool force = false;     // replace a run directory that is not empty
    bool resume = false;    // continue the run in out_dir after its last finished stage
    bool use_cache = true;  // reuse finished stages from the shared stage cache
};

/// Returns the process exit code (0 ok, 3 a stage failed, 4 no result met the budget).
/// Throws input_error for problems found before anything ran or was written.
/// Measured drops and baselines are recorded in `measured` (and saved) for later plans.
int execute_plan(const plan& p, const registry& plugins, ledger& measured, const run_options& options);

}  // namespace shrink
