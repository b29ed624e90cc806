// The feature extractor of the reference CNN, until shrink trains convolutions itself:
// two conv blocks whose kernels are drawn from a seed (He-normal) and whose batch
// normalizations are measured on training images, so that every channel reaches the
// head centred and scaled. `shrink train --arch cnn` trains an MLP head on top.
//
// Random convolution features are a known, honest baseline (they are what a CNN's first
// layers compute before any training); the weights shrink trains are the head's.
#pragma once

#include "data/fashion_mnist.hpp"
#include "model/model.hpp"

#include <cstdint>

namespace shrink {

struct conv_trunk_options {
    int64_t channels1 = 16, channels2 = 16;
    uint64_t seed = 1;
    int64_t stats_samples = 10000;  // training images that set the batch normalizations
    float input_scale = 1.0f / 255.0f;
};

/// [1, 28, 28] -> conv 3x3 -> batchnorm -> relu -> max_pool 2 -> conv 3x3 -> batchnorm ->
/// relu -> max_pool 2 -> flatten: channels2 * 7 * 7 features. Deterministic for a seed
/// and thread count.
model random_conv_trunk(const image_set& train, const conv_trunk_options& options);

}  // namespace shrink
