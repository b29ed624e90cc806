// Parameter updates: SGD with momentum (L2 weight decay added to the gradient) and AdamW
// (weight decay decoupled from the adaptive step), with a learning-rate schedule. Both
// keep pruned weights at zero: a masked gradient is zero and the value is re-masked.
#pragma once

#include "train/net.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::train {

struct optimizer_options {
    std::string kind = "adamw";       // sgd | adamw
    double learning_rate = 1e-3;
    double momentum = 0.9;            // sgd
    double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // adamw
    double weight_decay = 0;          // on linear and conv weights only
    std::string schedule = "constant";  // constant | cosine | step
    int64_t step_epochs = 1;          // step: the rate is multiplied by step_gamma every step_epochs
    double step_gamma = 0.1;
};

/// The learning rate at `step` (from 0) of `total` steps, `per_epoch` steps an epoch.
/// cosine: from the base rate down to 0 at the last step.
double scheduled_rate(const optimizer_options& o, int64_t step, int64_t total, int64_t per_epoch);

/// Throws std::invalid_argument naming the field that is out of range.
void check(const optimizer_options& o);

class optimizer {
  public:
    explicit optimizer(const optimizer_options& o) : o_(o) { check(o); }
    void step(std::vector<parameter<float>>& params, double rate);

  private:
    optimizer_options o_;
    int64_t steps_ = 0;
    std::vector<std::vector<float>> m_, v_;
};

}  // namespace shrink::train
