// Picks the backend that runs a model forward on a device: the CPU engine (cpu/engine.hpp)
// or the CUDA runtime (cuda/). The one place above both backends, so forward passes,
// evaluation and benchmarks choose a device without knowing either.
#pragma once

#include "backend/runner.hpp"
#include "devices/device.hpp"

#include <memory>

namespace shrink {

/// The runner for `m` on `where`. `m` must outlive it.
std::unique_ptr<runner> make_runner(const model& m, const device_choice& where);

}  // namespace shrink
