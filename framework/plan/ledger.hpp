// The ledger: measured drops from earlier runs, so the next plan predicts from
// measurements instead of plugin priors.
//
// A drop is recorded when an evaluator measures a path segment that holds exactly one
// lossy stage (between the baseline or an earlier evaluator and this one). Its key is a
// hash of the input model's sha256, the metric and the chain of stages (types, params,
// calibration data) up to and including that stage: the same key means the same input
// weights and the same work. Baselines are recorded per model, evaluator and metric.
//
// The file is JSON, written atomically; $SHRINK_LEDGER names it ("off" disables it),
// else $XDG_CACHE_HOME/shrink/ledger.json, else ~/.cache/shrink/ledger.json.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace shrink {

class ledger {
  public:
    struct measurement {
        double value = 0;   // a drop, or a baseline metric value
        double stderr_ = 0;
        uint64_t runs = 0;
        std::string recorded;  // UTC date of the last measurement
    };

    /// Empty path: disabled (finds nothing, records nothing).
    explicit ledger(std::filesystem::path file);
    static ledger open_default();

    bool enabled() const { return !file_.empty(); }
    const std::filesystem::path& file() const { return file_; }

    std::optional<measurement> find(const std::string& key) const;
    /// Keeps the latest value; counts runs. `about` describes the key for people reading the file.
    void record(const std::string& key, double value, double stderr_, const nlohmann::json& about);
    /// Writes the file if anything was recorded. Throws std::runtime_error naming it.
    void save() const;

  private:
    std::filesystem::path file_;
    nlohmann::json entries_ = nlohmann::json::object();
    bool dirty_ = false;
};

}  // namespace shrink
