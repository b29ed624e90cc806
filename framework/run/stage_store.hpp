// Finished stages, stored by the hash of everything that determines their output: the
// parent's key (or the input model's sha256), the plugin file's sha256, the stage type,
// params and seed, the data files, the thread count and shrink's version. The same key
// means the same bytes, so an entry serves two purposes:
//   - checkpoints: a run keeps its entries in RUN_DIR/checkpoints, so `--resume`
//     continues after the last stage that finished;
//   - the stage cache: entries are also linked into $SHRINK_CACHE (default
//     ~/.cache/shrink/stages; "off" disables it), so a later run of the same first
//     stages reuses them instead of recomputing.
// An entry is a directory KEY/ with model.safetensors (absent for evaluators, whose
// model is their parent's) and state.json (the stage's results and the artifacts the
// model state carries: type, shape, sha256 and facts of each), written last: an entry
// without state.json is unfinished and ignored. Artifact files live beside the entries in
// artifacts/SHA256, one file per content however many entries list it; an entry whose
// artifact file is missing or of the wrong size is ignored (recomputed).
#pragma once

#include "run/model_state.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace shrink {

struct stored_stage {
    std::optional<model_state> state;  // empty for evaluators
    std::map<std::string, double> results;
};

class stage_store {
  public:
    /// `checkpoints`: the run's own directory (always written). `cache`: the shared cache,
    /// empty to neither read nor write it.
    stage_store(std::filesystem::path checkpoints, std::filesystem::path cache);

    /// The shared cache location from $SHRINK_CACHE; empty when "off".
    static std::filesystem::path default_cache();

    /// Where a running stage's artifacts are written (the run's own pool).
    std::filesystem::path artifact_pool() const { return checkpoints_ / "artifacts"; }

    /// Looks in the run's checkpoints, then (when `use_cache`) in the shared cache.
    /// `source` says which answered ("checkpoint" or "cache").
    std::optional<stored_stage> find(const std::string& key, bool use_cache, std::string& source) const;

    /// Writes an entry atomically into the checkpoints and links it into the cache.
    /// Throws std::runtime_error naming the path when the checkpoint cannot be written;
    /// a cache that cannot be written is only a warning.
    void put(const std::string& key, const model_state* state, const std::map<std::string, double>& results,
             const std::string& stage_id) const;

  private:
    std::filesystem::path checkpoints_, cache_;
};

}  // namespace shrink
