// The student of a distillation: the teacher's graph with narrower layers (fresh weights for a
// classifier; a decoder keeps its teacher's, its MLPs narrowed).
#pragma once

#include "model/model.hpp"

#include <cstdint>

namespace shrink {

/// Every linear and conv layer but the last keeps `width_scale` of its outputs (rounded,
/// at least 1); what reads them (batchnorm, joins, the next layer) follows. Weights are
/// drawn from `seed` (He-normal, zero biases, batchnorm 1 and 0); encodings, input
/// quantization and statistics are not carried over. Throws std::runtime_error naming the
/// layer that cannot narrow (a grouped conv, a reshape to a fixed size that changed).
/// A decoder (a model with attention) is narrowed in its MLPs only, keeping the teacher's
/// weights: each MLP keeps width_scale of its channels, those with the largest gate, up and
/// down weights (config.json's intermediate_size follows); attention, embeddings and norms
/// stay as they are, and `seed` is not used.
model make_student(const model& teacher, double width_scale, uint64_t seed);

}  // namespace shrink
