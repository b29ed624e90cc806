// Runs a model on the CPU: the reference path decodes every weight to float once, then
// each batch is a chain of oneDNN matmuls and elementwise loops.
#pragma once

#include "model/model.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace shrink {

class engine {
  public:
    /// Called before each linear layer with its input (rows x cols, row-major).
    using layer_input_fn = std::function<void(const std::string& layer, const float* data, int64_t rows, int64_t cols)>;

    /// `m` must outlive the engine: its steps refer to m's layers.
    explicit engine(const model& m);
    ~engine();

    /// Runs `rows` samples of input_features floats; returns rows x output width.
    /// Not thread-safe: an engine keeps its buffers and kernels per batch size.
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
        bool fused_relu = false;  // a linear whose following relu runs inside its matmul
    };
    struct batch_plan;  // kernels and buffers for one batch size
    batch_plan& plan_for(int64_t rows) const;
    mutable std::map<int64_t, std::unique_ptr<batch_plan>> plans_;
    std::vector<step> steps_;
    std::vector<int64_t> slot_width_;
    int output_slot_ = 0;
    int64_t output_width_ = 0;
};

}  // namespace shrink
