// Accuracy-budget arithmetic: how expected drops compound along a path, how a measured
// value compares with the baseline, and what a budget allows. docs/recipes.md, "Budgets".
//
// Retention is quality relative to the baseline, 1 = unchanged, oriented so that lower
// is worse whatever the metric: value / baseline when higher is better (accuracy),
// baseline / value when lower is better (perplexity, loss).
//
// An expected drop d is a stage's relative degradation: it multiplies a higher-is-better
// metric by (1 - d) and a lower-is-better one by (1 + d).
#pragma once

#include "recipe/recipe.hpp"

#include <optional>
#include <string>
#include <vector>

namespace shrink {

struct stage_drop {
    double drop = 0;
    std::string family;  // technique family: the stage kind (pruner, quantizer, ...)
};

/// Predicted retention of a path. The drops compound (a product, not a sum). With an
/// interaction penalty p and k different families stacked on the path, the compounded
/// degradation is multiplied by (1 + p)^(k - 1): stacked techniques interact worse than
/// independently (p = 0.2 turns 10% + 5% + 3% in three families into about 25%).
double predict_retention(const std::vector<stage_drop>& drops, bool higher_is_better, double penalty);

/// The retention of a measured value.
double retention_of(double baseline, double value, bool higher_is_better);

/// The drop (in the expected-drop convention) that takes retention r_before to r_after.
double drop_between(double retention_before, double retention_after, bool higher_is_better);

/// The least retention the budget allows. An absolute budget needs the baseline value;
/// without it only the relative part counts. 0 when no budget applies.
double required_retention(const budget_spec& budget, std::optional<double> baseline);

/// Whether a measured value meets every form of the budget given.
bool within_budget(const budget_spec& budget, double baseline, double value);

}  // namespace shrink
