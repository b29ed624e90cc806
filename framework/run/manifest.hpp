// What a run records about itself (manifest.json) and the key of each stage's work.
#pragma once

#include "plan/plan.hpp"
#include "plugins/registry.hpp"
#include "run/data_access.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace shrink {

std::string utc_now(const char* format = "%Y-%m-%dT%H:%M:%SZ");

/// What besides a stage's own params determines its output: the plugin files' and data
/// files' hashes, read once per run.
struct run_inputs {
    std::map<const loaded_plugin*, std::string> plugin_sha;
    std::vector<std::pair<std::string, std::string>> data_files;  // file, sha256
    std::string data_hash_text;
};

/// Hashes the data files and the plugins the plan's stages come from.
run_inputs gather_run_inputs(const plan& p, const data_access& data);

/// The manifest a run writes before its first stage ("running"): shrink, the recipe, the
/// model, the data, the machine, the libraries and the plugins in use. Fills `inputs`
/// (gather_run_inputs).
nlohmann::json start_manifest(const plan& p, const registry& plugins, const data_access& data, run_inputs& inputs);

/// A stage's key: everything that determines its output (stage_store.hpp); `parent` is
/// the parent's key or "model:SHA256".
std::string stage_key(const planned_stage& st, const std::string& parent, const run_inputs& inputs);
/// Every stage's key, by stage index.
std::vector<std::string> stage_keys(const plan& p, const run_inputs& inputs);

}  // namespace shrink
