// Runs a model on the CPU: the reference path decodes every weight to float once, then
// each batch is a chain of oneDNN matmuls and elementwise loops.
#pragma once

#include "model/model.hpp"

#include <functional>
#include <string>
#include <vector>

namespace shrink {

class engine {
  public:
    /// Called before each linear layer with its input (rows x cols, row-major).
    using layer_input_fn = std::function<void(const std::string& layer, const float* data, int64_t rows, int64_t cols)>;

    explicit engine(const model& m);

    /// Runs `rows` samples of input_features floats; returns rows x output width.
    std::vector<float> run(const float* input, int64_t rows, const layer_input_fn& on_layer_input = {}) const;

    int64_t output_width() const { return output_width_; }

  private:
    struct step {
        const layer* source;
        int op;  // 0 linear, 1 relu, 2 softmax
        int input_slot, output_slot;
        std::vector<float> weight;  // decoded [out, in]
        std::vector<float> bias;
        int64_t in = 0, out = 0;
    };
    const model& model_;
    std::vector<step> steps_;
    std::vector<int64_t> slot_width_;
    int output_slot_ = 0;
    int64_t output_width_ = 0;
};

}  // namespace shrink
