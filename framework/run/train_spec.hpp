// A plugin's training request (abi.h, shrink_train_spec) as the trainer's options.
#pragma once

#include "model/model.hpp"
#include "train/fit.hpp"

#include <shrink/abi.h>

#include <cstdint>

namespace shrink {

/// Everything but the data and the progress callbacks. `teacher` may be null (no
/// distillation asked). Throws std::invalid_argument for an unknown optimizer or schedule,
/// a bad hidden pair, an unknown or quantized transformed tensor.
train::fit_options fit_options_of(const shrink_train_spec& spec, const model& m, const model* teacher, uint64_t seed);

}  // namespace shrink
