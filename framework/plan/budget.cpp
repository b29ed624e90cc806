#include "plan/budget.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace shrink {

double predict_retention(const std::vector<stage_drop>& drops, bool higher_is_better, double penalty) {
    std::set<std::string> families;
    double product = 1;
    for (const stage_drop& d : drops) {
        if (d.drop <= 0) continue;
        families.insert(d.family);
        product *= higher_is_better ? 1 - d.drop : 1 + d.drop;
    }
    const double inflation = families.size() > 1 ? std::pow(1 + penalty, double(families.size() - 1)) : 1.0;
    if (higher_is_better) return std::max(0.0, 1 - (1 - product) * inflation);
    return 1 / (1 + (product - 1) * inflation);
}

double retention_of(double baseline, double value, bool higher_is_better) {
    if (higher_is_better) return baseline != 0 ? value / baseline : 0;
    return value != 0 ? baseline / value : 0;
}

double drop_between(double retention_before, double retention_after, bool higher_is_better) {
    if (retention_before <= 0 || retention_after <= 0) return 1;
    const double ratio = retention_after / retention_before;
    return higher_is_better ? 1 - ratio : 1 / ratio - 1;
}

double required_retention(const budget_spec& budget, std::optional<double> baseline) {
    if (!budget.present) return 0;
    double need = 0;
    if (budget.max_drop) need = budget.higher_is_better ? 1 - *budget.max_drop : 1 / (1 + *budget.max_drop);
    if (budget.max_abs_drop && baseline && *baseline > 0) {
        const double b = *baseline, a = *budget.max_abs_drop;
        need = std::max(need, budget.higher_is_better ? 1 - a / b : b / (b + a));
    }
    return need;
}

bool within_budget(const budget_spec& budget, double baseline, double value) {
    if (!budget.present) return true;
    const bool hib = budget.higher_is_better;
    if (budget.max_drop && retention_of(baseline, value, hib) < (hib ? 1 - *budget.max_drop : 1 / (1 + *budget.max_drop)))
        return false;
    if (budget.max_abs_drop && (hib ? baseline - value : value - baseline) > *budget.max_abs_drop) return false;
    return true;
}

}  // namespace shrink
