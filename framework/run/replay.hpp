// `shrink replay RUN_DIR` and `shrink diff RUN_A RUN_B`: reproducing and comparing runs
// from what their run directories recorded.
#pragma once

#include <string>
#include <vector>

namespace shrink {

/// Problems that make a run impossible to replay faithfully: an input, the recipe or a
/// plugin file whose sha256 no longer matches the manifest. Empty = replayable.
/// Throws input_error when RUN_DIR is not a finished run.
std::string replay_blockers(const std::string& run_dir, const std::vector<std::string>& plugin_dirs);

/// The same check for any run directory, finished or not (`run --resume` uses it: a run
/// continued on other inputs would mix two experiments in one directory).
std::string changed_inputs(const std::string& run_dir, const std::vector<std::string>& plugin_dirs);

/// Compares the models and metrics of two finished runs; returns the differences, one per
/// line ("" = byte-identical models and identical metrics).
std::string compare_outputs(const std::string& original_dir, const std::string& replay_dir);

/// What differs between two runs: recipe lines, inputs, plugins, seeds, threads and
/// versions, per-stage status, metrics and sizes. Human-readable text.
std::string diff_runs(const std::string& a, const std::string& b);

}  // namespace shrink
