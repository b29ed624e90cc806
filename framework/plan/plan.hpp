// The plan: a recipe checked against the plugins before anything runs.
//
// make_plan resolves each stage's type and typed params, builds the stage DAG (Boost.Graph),
// refuses cycles and unknown parents, walks every path from the model to a leaf carrying
// the facts that hold (a stage's `requires` must hold on its path; `invalidates` removes
// facts made from old weights), and compounds the expected drops along each path against
// the budget. Every problem is reported at its recipe line and column.
#pragma once

#include "plugins/registry.hpp"
#include "recipe/recipe.hpp"

#include <set>
#include <string>
#include <vector>

namespace shrink {

struct resolved_param {
    std::string name;
    int32_t type = SHRINK_PARAM_FLOAT;
    int64_t int_value = 0;
    double float_value = 0;
    std::string text;  // canonical text of the value
    bool from_default = false;
};

struct planned_stage {
    const stage_spec* spec = nullptr;
    const stage_type_handle* type = nullptr;
    std::string kind;
    std::vector<resolved_param> params;
    int parent = -1;  // -1: the input model
    std::vector<int> children;
    double expected_drop = 0;
    std::string drop_source;  // "recipe" or "plugin"
    std::set<std::string> requires_facts, provides_facts, invalidates_facts;
    std::string device = "cpu";
    uint64_t seed = 0;  // derived from the recipe seed and the stage id

    /// Stages that change weights are the lossy ones: they carry an expected drop.
    bool changes_weights() const { return kind != "evaluator" && kind != "calibrator"; }
};

struct plan_path {
    std::vector<int> stages;  // root to leaf
    double predicted_retention = 1;
};

struct plan {
    const recipe* source = nullptr;
    std::vector<planned_stage> stages;  // recipe order
    std::vector<int> order;             // execution order (topological)
    std::vector<plan_path> paths;
    double min_retention = 0;  // 1 - max_drop; 0 without a budget
    std::vector<std::string> notes;  // e.g. what device: auto chose
};

/// Facts the host itself provides at the root of every path, from the recipe's data section.
std::set<std::string> root_facts(const recipe& r);

/// Throws input_error listing every problem.
plan make_plan(const recipe& r, const registry& plugins);

/// The human-readable plan `shrink plan` prints (and `validate` in short form).
std::string format_plan(const plan& p, bool detailed);

/// The C view of a stage's resolved params; `storage` keeps it alive.
shrink_params c_params(const std::vector<resolved_param>& params, std::vector<shrink_param_value>& storage);

}  // namespace shrink
