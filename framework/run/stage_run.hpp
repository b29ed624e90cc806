// One stage's run as the scheduler sees it: the plugin called over a model state through
// the stage host, what it reported, how long it took and the memory it reached.
#pragma once

#include "plan/plan.hpp"
#include "run/data_access.hpp"
#include "run/model_state.hpp"
#include "run/stage_host.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace shrink {

struct stage_outcome {
    std::string status = "pending";  // ok, failed, skipped, over_budget
    std::string message;
    double seconds = 0;
    std::map<std::string, double> results;
    uint64_t size_bytes = 0;
    std::string started, ended;
    std::string source;  // run, checkpoint or cache
    uint64_t peak_rss = 0;  // the process's peak resident memory after the stage
};

/// The recipe's model as stages receive it: a Hugging Face folder, an ONNX file or a shrink
/// file (the run and the plan's preview read it the same way).
model load_recipe_model(const std::string& path);

/// Peak resident memory of this process so far.
uint64_t peak_rss_bytes();

/// Runs one stage's plugin over `state`, its artifacts going to `artifact_pool`; then
/// forgets the artifacts its weight changes made stale. Throws stage_error with the
/// plugin's message. `log`, when set, receives the stage's info and warning lines instead
/// of the console.
std::map<std::string, double> run_stage(const planned_stage& st, model_state& state, data_access& data,
                                        const std::filesystem::path& artifact_pool, const stage_host::log_sink& log = {});

/// Prints an error; messages that already name their file and say "error:" stay as they are.
void print_error(const std::string& message);

}  // namespace shrink
