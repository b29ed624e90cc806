// What a run reports when its stages are done: report.json, the measured drops it
// teaches the ledger, and the summary table.
#pragma once

#include "plan/ledger.hpp"
#include "plan/plan.hpp"
#include "run/stage_run.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace shrink {

/// A path segment between two measurements with exactly one lossy stage in it measures
/// that stage's drop: recorded in `measured` (the caller saves it). `results` holds the
/// evaluators' entries (verdict.hpp).
void teach_ledger(const plan& p, const nlohmann::json& results, ledger& measured);

/// report.json: every stage's outcome, the baseline, the evaluators' entries, the budget.
nlohmann::json report_json(const plan& p, const std::vector<stage_outcome>& outcome, const nlohmann::json& baseline,
                           const nlohmann::json& results);

/// The table printed at the end of a run with a baseline: size, ratio, metric, predicted
/// and measured retention, interval and verdict per evaluator.
void print_summary(const plan& p, const nlohmann::json& baseline, const nlohmann::json& results, uint64_t original_size);

}  // namespace shrink
