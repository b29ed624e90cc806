// Choosing the next token from a language model's logits.
#pragma once

#include "util/random.hpp"

#include <cstdint>

namespace shrink::text {

/// The next token: at temperature 0 the most likely (the lowest id of equals), else a
/// draw from softmax(logits / temperature) with `g` (the same seed, the same text).
uint32_t sample_token(const float* logits, int64_t vocab, double temperature, rng& g);

}  // namespace shrink::text
