// An evaluator's measurement judged against the recipe's budget.
#pragma once

#include "plan/plan.hpp"
#include "run/stage_run.hpp"

#include <nlohmann/json.hpp>

#include <optional>

namespace shrink {

/// The report's entry for evaluator stage `i` (its path, the predicted and measured
/// retention against `base`, the sampling interval, within_budget); a result below the
/// budget makes `o` over_budget, which stops the branch. Nothing when the evaluator reported
/// no metric: `o` becomes failed, with the reason printed.
std::optional<nlohmann::json> judge_evaluator(const plan& p, int i, stage_outcome& o, double base);

}  // namespace shrink
