// The baseline: each distinct evaluator of the plan measures the unmodified model once.
#pragma once

#include "plan/ledger.hpp"
#include "plan/plan.hpp"
#include "run/data_access.hpp"
#include "run/manifest.hpp"
#include "run/stage_store.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

namespace shrink {

/// What evaluators share a baseline by: type and params.
std::string evaluator_key(const planned_stage& st);

struct baselines {
    nlohmann::json first = nullptr;       // the report's "baseline": the first evaluator's
    std::map<std::string, double> value;  // evaluator_key -> metric
};

/// Measures (or takes from the stage store, where a baseline is stored like a stage) each
/// distinct evaluator's metric on `original` and records it in the ledger. Throws
/// stage_error when an evaluator fails or reports no metric.
baselines measure_baselines(const plan& p, const model& original, const std::shared_ptr<const model>& teacher, data_access& data,
                            const stage_store& store, bool use_cache, const run_inputs& inputs, ledger& measured,
                            uint64_t original_size);

}  // namespace shrink
