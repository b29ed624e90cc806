// The test programs' handle on CUDA device 0, opened once, as a stage would get it.
#pragma once

#include "cuda/cuda.hpp"

#include <shrink/cuda.hpp>

namespace shrink::test {

inline cuda_device gpu() {
    static const std::unique_ptr<cuda_stage_device> device = open_cuda_stage_device(0);
    return cuda_device(device->table());
}

}  // namespace shrink::test
