// `shrink plan`'s preview: a stage whose type declares SHRINK_STAGE_PREVIEW runs ahead of the
// run on the input it will get, when that input is at hand without running anything else:
// the output of its nearest model-holding ancestor found in the stage cache (same key, so the
// same bytes the run will start from), or the input model itself. The plan then shows what
// the stage will do (quantizer.mixed's bits per layer) and whether it will fail. The model
// the preview leaves is thrown away; nothing is written to the cache.
#pragma once

#include "plan/plan.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace shrink {

struct stage_preview {
    std::string stage;   // its id
    std::string from;    // the ancestor whose cached output it ran on, or "model"
    std::string status;  // "ok", "failed" or "not_cached"
    std::string message; // the failure, or what is not cached
    std::vector<std::string> log;  // its info and warning lines, in order
    std::map<std::string, double> results;
};

/// Previews every previewable stage of the plan, in execution order; empty when it has none.
/// `use_cache` false: only stages whose input is the model itself. Throws input_error when
/// the model or data cannot be read.
std::vector<stage_preview> preview_stages(const plan& p, bool use_cache);

/// The plan's text section; empty for no previews.
std::string format_previews(const std::vector<stage_preview>& previews);
nlohmann::json previews_json(const std::vector<stage_preview>& previews);

}  // namespace shrink
