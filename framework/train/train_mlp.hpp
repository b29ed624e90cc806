// `shrink train`: makes the reference models, an MLP classifier trained on Fashion-MNIST
// and a CNN whose head it trains the same way over fixed conv features.
// Not a compression stage. Deterministic for a given seed and thread count: every random
// draw comes from the seed, and every reduction runs in a fixed order.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shrink {

struct train_options {
    std::vector<int64_t> hidden{256, 128};
    int epochs = 15;
    int64_t batch = 128;
    double learning_rate = 1e-3;
    double weight_decay = 0.1;  // decoupled (AdamW), on weights only
    uint64_t seed = 1;
    int64_t train_samples = 0;  // 0 = all 60000
    std::string data_dir;       // empty = the Debian package's
    /// A fixed feature extractor (its output flat) under the MLP, e.g. the reference
    /// CNN's conv blocks; the model made is the trunk then the trained head. Null: the
    /// MLP reads pixels.
    const model* trunk = nullptr;
};

struct train_result {
    model net;
    double test_accuracy = 0;
    double final_loss = 0;
};

train_result train_mlp(const train_options& options,
                       const std::function<void(int epoch, double loss)>& on_epoch = {});

/// Top-1 accuracy of a model on a Fashion-MNIST split.
double evaluate_accuracy(const model& net, const std::string& data_dir, const std::string& split);

}  // namespace shrink
