// Recipe schema v1: the typed form of a recipe file, every field with its source mark.
// The schema is documented in docs/recipes.md; parse_recipe checks everything that does
// not need the plugins (types, ranges, required fields, unknown keys, paths).
#pragma once

#include "recipe/yaml_tree.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shrink {

constexpr uint64_t recipe_max_bytes = 1 << 20;

/// One data section. Images: fashion-mnist with a split. Text, for language models: kjv
/// (Debian's bible-kjv) or text (a user's file at `path`), cut into windows of seq_len
/// tokens; `samples` counts windows then, and the split is fixed by the section's role
/// (docs/language-models.md, "Text data").
struct data_source {
    bool present = false;
    std::string dataset;   // "fashion-mnist" | "kjv" | "text"
    std::string split;     // "train" | "test" (images only)
    uint64_t samples = 0;  // 0 = all
    std::string path;      // directory of the IDX files (empty = the Debian package's), or the text file
    int64_t seq_len = 0;   // text: tokens a window
    source_mark mark, seq_len_mark;

    bool is_text() const { return dataset == "kjv" || dataset == "text"; }
    /// What identifies the samples the section yields (for baseline and stage keys).
    std::string identity() const;
};

/// Windows of text data are 128 tokens unless the section says otherwise.
constexpr int64_t default_seq_len = 128;

/// How pixels become model inputs: (pixel * scale - mean[c]) / std[c] for channel c.
/// Absent: the model's own input_scale (models made by `shrink train` carry it; imported
/// ones need this). A model with C channels gets each grayscale pixel in every channel,
/// channel-major (nchw) or channel-minor (nhwc); mean and std have 1 or C values.
struct preprocess_spec {
    bool present = false;
    double scale = 1;
    std::vector<double> mean{0}, std{1};
    std::string layout = "nchw";
};

struct stage_param {
    std::string name;
    yaml_node value;  // a scalar; typed against the plugin's declaration by the planner
};

struct stage_spec {
    std::string id;
    std::string use;
    std::vector<std::pair<std::string, source_mark>> after;  // empty: the previous list entry
    bool has_after = false;
    std::vector<stage_param> params;
    std::string device;  // empty: the recipe's
    std::optional<double> expected_drop;
    source_mark mark, id_mark, use_mark, device_mark, params_mark;
};

struct budget_spec {
    bool present = false;
    std::string metric = "accuracy";
    bool higher_is_better = true;
    std::optional<double> max_drop;      // relative to the baseline
    std::optional<double> max_abs_drop;  // in metric units
    double interaction_penalty = 0;      // see docs/recipes.md, "Budgets"
    source_mark mark;
};

struct recipe {
    std::string file;  // as given
    yaml_node resolved;  // the tree after --set overrides
    int64_t version = 1;
    std::string name;
    uint64_t seed = 0;
    std::string model;  // absolute
    source_mark model_mark;
    data_source calibration;
    data_source evaluation;
    data_source training;  // what fine-tuners, distillers and QAT train on
    preprocess_spec preprocess;
    std::string tokenizer;  // data.tokenizer, absolute; empty: the model folder's tokenizer.json
    source_mark tokenizer_mark;
    std::string device = "cpu";
    source_mark device_mark;
    budget_spec budget;
    std::string teacher;  // absolute; empty: the recipe's model is the kept teacher
    source_mark teacher_mark;
    std::optional<uint64_t> memory_limit;  // limits.memory, bytes
    source_mark limits_mark;
    std::vector<stage_spec> stages;
    std::string output_format = "safetensors";  // "onnx": also write models/<stage>.onnx
};

/// Reads, applies overrides, and checks the schema. Throws input_error with every problem
/// found (usage_error for a malformed --set).
recipe parse_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

/// "8GiB", "512 MiB", "1.5GB", "1000000" (bytes) -> bytes; nullopt when malformed.
std::optional<uint64_t> parse_byte_size(const std::string& text);

/// Serializes a yaml_node tree back to YAML text (the resolved recipe in a run directory).
std::string to_yaml(const yaml_node& node);

}  // namespace shrink
