// What runs a model forward, on whichever device: the CPU engine (runtime/engine.hpp) and
// the CUDA runtime (cuda/) both answer this, so forward passes, evaluation and
// benchmarks pick a device in one place, make_runner.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace shrink {

class runner {
  public:
    /// Called before each linear or conv layer with its input in host memory (rows x
    /// cols, row-major; a conv's cols are C*H*W).
    using layer_input_fn = std::function<void(const std::string& layer, const float* data, int64_t rows, int64_t cols)>;

    virtual ~runner() = default;
    /// Runs `rows` samples of input_features floats; returns rows x output_width().
    /// Not thread-safe: a runner keeps its buffers per batch size.
    virtual std::vector<float> run(const float* input, int64_t rows, const layer_input_fn& on_layer_input = {}) const = 0;
    virtual int64_t output_width() const = 0;
};

}  // namespace shrink
