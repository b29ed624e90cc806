#include "devices/cuda_probe.hpp"

#include <cstdlib>
#include <dlfcn.h>

namespace shrink {

bool cuda_built() {
#ifdef SHRINK_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

const cuda_status& probe_cuda() {
    static const cuda_status status = [] {
        cuda_status s;
        if (const char* forced = std::getenv("SHRINK_CUDA_DEVICES"); forced && std::string(forced) == "0") {
            s.reason = "SHRINK_CUDA_DEVICES=0";
            return s;
        }
        if (!cuda_built()) {
            s.reason = "this shrink was built without the CUDA toolkit";
            return s;
        }
        void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            s.reason = "no CUDA driver (libcuda.so.1 not found)";
            return s;
        }
        using init_fn = int (*)(unsigned);
        using count_fn = int (*)(int*);
        auto init = reinterpret_cast<init_fn>(dlsym(lib, "cuInit"));
        auto count = reinterpret_cast<count_fn>(dlsym(lib, "cuDeviceGetCount"));
        int n = 0;
        if (!init || !count || init(0) != 0 || count(&n) != 0) {
            s.reason = "the CUDA driver reports no usable device";
            return s;
        }
        s.devices = n;
        if (n == 0) s.reason = "the CUDA driver sees no device";
        return s;  // the driver stays loaded: unloading it is not safe once initialised
    }();
    return status;
}

}  // namespace shrink
