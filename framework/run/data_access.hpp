// The recipe's datasets as the splits stages see, loaded on first use and shared by all
// stages of a run.
#pragma once

#include "data/fashion_mnist.hpp"
#include "recipe/recipe.hpp"
#include "run/split_feed.hpp"
#include "text/tokenizer.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace shrink {

/// Datasets, loaded on first use and shared by all stages of the run.
class data_access {
  public:
    /// `tokenizer`: the tokenizer.json text data is encoded with (the plan's); empty when
    /// the recipe has no text data.
    data_access(const recipe& r, std::string tokenizer) : recipe_(r), tokenizer_path_(std::move(tokenizer)) {}

    /// Throws std::runtime_error when the recipe has no such data section, input_error when
    /// its data cannot be read or is too short.
    const split_view& get(shrink_split split);
    /// The data files the recipe's sections read, the tokenizer included (for the manifest
    /// and the stage keys).
    std::vector<std::string> files() const;

  private:
    const token_text& text_of(const data_source& src, const char* name);

    const recipe& recipe_;
    std::string tokenizer_path_;
    std::unique_ptr<text::tokenizer> tokenizer_;
    std::map<std::string, std::unique_ptr<image_set>> sets_;
    std::map<std::string, std::shared_ptr<const std::vector<uint32_t>>> tokens_;  // dataset|path -> the text's ids
    std::map<std::string, std::unique_ptr<token_text>> texts_;                   // ... |seq_len -> windows
    split_view calibration_, evaluation_, training_;
};

}  // namespace shrink
