// The recipe's datasets as the splits stages see, loaded on first use and shared by all
// stages of a run.
#pragma once

#include "data/fashion_mnist.hpp"
#include "recipe/recipe.hpp"
#include "run/split_feed.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace shrink {

/// Datasets, loaded on first use and shared by all stages of the run.
class data_access {
  public:
    explicit data_access(const recipe& r) : recipe_(r) {}

    /// Throws std::runtime_error when the recipe has no such data section.
    const split_view& get(shrink_split split);
    /// The data files the recipe's sections read (for the manifest and the stage keys).
    std::vector<std::string> files() const;

  private:
    const recipe& recipe_;
    std::map<std::string, std::unique_ptr<image_set>> sets_;
    split_view calibration_, evaluation_, training_;
};

}  // namespace shrink
