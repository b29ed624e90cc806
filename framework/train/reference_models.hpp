// `shrink train`: makes the reference models, an MLP and a small CNN trained on
// Fashion-MNIST with the training engine. Not a compression stage. Deterministic for a
// seed and thread count: every random draw comes from the seed, and every reduction runs
// in a fixed order for a given thread count.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shrink {

struct train_options {
    std::string arch = "mlp";  // mlp | cnn
    std::vector<int64_t> hidden{256, 128};
    std::vector<int64_t> channels{16, 32};  // cnn: the two conv blocks
    int epochs = 15;
    int64_t batch = 128;
    double learning_rate = 1e-3;
    double weight_decay = 0.1;  // decoupled (AdamW), on weights only
    uint64_t seed = 1;
    int64_t train_samples = 0;  // 0 = all 60000
    std::string data_dir;       // empty = the Debian package's
};

struct train_result {
    model net;
    double test_accuracy = 0;
    double final_loss = 0;
};

/// The untrained architecture: He-initialized linear and conv weights, zero biases,
/// batchnorm scale 1 and shift 0. mlp: 784-hidden-10; cnn: [1,28,28] -> two blocks of
/// conv 3x3 (pad 1) -> batchnorm -> relu -> max_pool 2 -> flatten -> the hidden layers -> 10.
model reference_architecture(const train_options& o);

/// Draws fresh weights for every linear, conv and batchnorm layer of `m` from `seed`.
void initialize_weights(model& m, uint64_t seed);

/// Trains with AdamW and a cosine schedule (batchnorm on batch statistics, then folded).
train_result train_reference(const train_options& options,
                             const std::function<void(int epoch, double loss)>& on_epoch = {});

/// Top-1 accuracy of a model on a Fashion-MNIST split.
double evaluate_accuracy(const model& net, const std::string& data_dir, const std::string& split);

}  // namespace shrink
