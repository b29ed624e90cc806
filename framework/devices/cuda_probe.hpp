// Whether a CUDA device is visible, asked of the driver at run time (dlopen of
// libcuda.so.1), so that the host needs no CUDA to build and answers the same everywhere.
#pragma once

#include <string>

namespace shrink {

struct cuda_status {
    int devices = 0;
    std::string reason;  // why there are none, for messages
};

/// Whether this build holds CUDA code (the toolkit was found when it was configured).
bool cuda_built();

/// Cached after the first call. SHRINK_CUDA_DEVICES=0 forces "none" (for tests).
const cuda_status& probe_cuda();

}  // namespace shrink
