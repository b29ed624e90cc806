// The CUDA backend as the rest of the host sees it. Implemented in cuda/ where the toolkit
// was found at build time, else by cuda/no_cuda.cpp, whose functions say so; nothing
// outside cuda/ includes a CUDA header.
#pragma once

#include "backend/runner.hpp"

#include <shrink/abi.h>

#include <memory>

namespace shrink {

/// A stage's view of device `ordinal`: the shrink_cuda table handed to its plugin. Memory
/// the plugin leaves allocated is freed when this ends.
class cuda_stage_device {
  public:
    virtual ~cuda_stage_device() = default;
    virtual const shrink_cuda* table() const = 0;
};

/// Throws std::runtime_error when the device cannot be opened.
std::unique_ptr<cuda_stage_device> open_cuda_stage_device(int ordinal);

/// The runtime on device `ordinal`: every weight decoded on the GPU once, then one kernel
/// or library call per step. `m` must outlive it.
std::unique_ptr<runner> make_cuda_runner(const model& m, int ordinal);

}  // namespace shrink
