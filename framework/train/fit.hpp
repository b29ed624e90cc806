// The training loop: shuffled mini-batches from a seed, a forward and backward pass per
// batch, the loss (cross-entropy, optionally blended with distillation from a teacher and
// hidden-state matching), an optimizer step with the scheduled rate. Deterministic for a
// seed and thread count.
#pragma once

#include "model/model.hpp"
#include "train/net.hpp"
#include "train/optimizer.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace shrink::train {

/// Where the training samples come from: `fill` writes `rows` samples (plain model input)
/// and their labels for the given sample indices. A sample is rows_per_sample rows of the
/// model's input: 1 for images, a window's tokens for text (labels the next tokens, -1
/// at a window's last position).
struct sample_source {
    int64_t count = 0;
    int64_t rows_per_sample = 1;
    std::function<void(const int64_t* indices, int64_t rows, float* x, int32_t* labels)> fill;
};

struct fit_options {
    int epochs = 1;
    int64_t batch = 128;
    int64_t max_samples = 0;  // 0 = all of the source
    uint64_t seed = 1;
    optimizer_options optimizer;
    net_options net;
    /// Distillation: loss = (1 - alpha) * cross-entropy + alpha * T^2 KL(teacher || student).
    const model* teacher = nullptr;
    double alpha = 0;
    double temperature = 4;
    /// Hidden-state matching: (student value, teacher value) pairs of equal width, each
    /// adding hidden_weight * mean squared difference.
    std::vector<std::pair<std::string, std::string>> hidden_pairs;
    double hidden_weight = 0;
    /// Called before each forward pass, e.g. to fill parameters' `effective` values with
    /// their fake-quantized form (quantization-aware training).
    std::function<void(std::vector<parameter<float>>&)> before_forward;
    std::function<void(int epoch, double loss)> on_epoch;
    /// After each step: its number (from 1) and the batch's mean loss per labelled row.
    std::function<void(int64_t step, double loss)> on_step;
};

struct fit_result {
    std::vector<double> epoch_loss;  // mean loss per labelled row (a sample, or a predicted token), each epoch
    int64_t steps = 0;
};

/// Trains `m` in place (its weights, masks kept; batchnorm folded when trained on batch
/// statistics). Throws std::invalid_argument for options that do not fit the model.
fit_result fit(model& m, const sample_source& data, const fit_options& o);

}  // namespace shrink::train
