// The plan: a recipe checked against the plugins and the model before anything runs.
//
// make_plan runs passes, each in its own file (plan/passes.hpp): it resolves each stage's
// type and typed params, builds the stage DAG (Boost.Graph), refuses cycles and unknown
// parents, walks every path from the model to a leaf carrying the facts that hold, layer
// by layer (a stage's `requires` must hold on its path and its `forbids` must not;
// `invalidates` removes facts measured on old weights, for the changed layers and
// everything downstream of them), resolves devices, predicts each path's retention from
// compounded expected drops, estimates each stage's peak memory, and checks both against
// the budget and the memory limit. Every problem is reported at its recipe line and
// column, all of them in one pass.
#pragma once

#include "model/safetensors.hpp"
#include "plan/ledger.hpp"
#include "plugins/registry.hpp"
#include "recipe/recipe.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace shrink {

struct resolved_param {
    std::string name;
    int32_t type = SHRINK_PARAM_FLOAT;
    int64_t int_value = 0;
    double float_value = 0;
    std::string text;  // canonical text of the value (LAYERS: comma separated)
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
    std::string drop_source;  // "recipe", "ledger (...)" or "plugin"
    std::set<std::string> requires_facts, provides_facts, invalidates_facts, forbids_facts;
    std::vector<int> scope;  // model layers the stage works on
    std::string device = "cpu";
    uint64_t seed = 0;       // derived from the recipe seed and the stage id
    std::string chain_key;   // ledger key of the work up to and including this stage
    uint64_t peak_memory = 0;
    std::string memory_detail;
    /// Facts measured on activations that this stage's weight changes make stale (fact ->
    /// the layers, by name, whose artifacts backing it the executor then forgets).
    std::map<std::string, std::set<std::string>> makes_stale;
    /// Per-layer weight encodings promised after this stage (fact -> input-model layer names).
    std::map<std::string, std::set<std::string>> promised_encodings;
    int32_t time_class = SHRINK_TIME_WEIGHTS;
    bool facts_used = false;  // a later stage required a fact this one provided

    /// Stages that only measure the model: calibrators (on activations) and analyzers (what
    /// a change would do, through forward_trial). They read calibration data.
    bool measures() const { return kind == "calibrator" || kind == "analyzer"; }
    /// Stages that change weights are the lossy ones: they carry an expected drop.
    bool changes_weights() const { return kind != "evaluator" && !measures(); }
};

struct plan_path {
    std::vector<int> stages;  // root to leaf
    double predicted_retention = 1;
    double required_retention = 0;
    bool ok = true;
};

struct plan {
    const recipe* source = nullptr;
    model_outline model;
    std::string model_sha256;
    std::string tokenizer;  // the tokenizer.json text data is encoded with; empty without text data
    double text_bytes_per_token = 1;  // measured on a sample of the text data (memory estimates); 1 when unknown, the most a byte-level BPE makes
    std::vector<planned_stage> stages;  // recipe order
    std::vector<int> order;             // execution order (topological)
    std::vector<plan_path> paths;
    std::optional<double> baseline;     // from the ledger, when an earlier run measured it
    std::string baseline_key;
    uint64_t memory_limit = 0;
    std::string memory_limit_source;
    std::vector<std::string> notes;     // e.g. what device: auto chose
    std::vector<std::string> warnings;  // legal but probably wrong, "FILE:LINE:COL: warning: ..."
};

/// Facts the host itself provides at the root of every path, from the recipe.
std::set<std::string> root_facts(const recipe& r);

/// Throws input_error listing every problem. `measured` may be disabled.
plan make_plan(const recipe& r, const registry& plugins, const ledger& measured);

/// The human-readable plan `shrink plan` prints (and `validate` in short form).
std::string format_plan(const plan& p, bool detailed);
/// The same as data (`shrink plan --format json`).
std::string format_plan_json(const plan& p);
/// A Graphviz digraph of the DAG (`shrink plan --format dot`).
std::string format_plan_dot(const plan& p);

/// The C view of a stage's resolved params; `storage` keeps it alive.
shrink_params c_params(const std::vector<resolved_param>& params, std::vector<shrink_param_value>& storage);

/// Ledger key of a baseline measurement by an evaluator stage.
std::string baseline_key(const plan& p, const planned_stage& evaluator);

std::string format_bytes(uint64_t bytes);

}  // namespace shrink
