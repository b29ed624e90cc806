// shrink plugin SDK: a CUDA math library (cuBLAS, cuSOLVER, cuFFT...) opened the first
// time a stage calls into it, not when the plugin loads.
//
// Why: linking such a library makes the dynamic loader map and relocate it in every
// process that loads the plugin, GPU or not. cuBLAS with cuBLASLt costs about 150 MB of
// resident memory and cuSOLVER 35 MB more, before a line of the plugin runs; the host
// loads every plugin to plan a recipe. Opened on first use, they cost nothing to a run
// that stays on the CPU. The CUDA runtime (cudart, under 1 MB) may stay linked.
//
//   #include <cusolverDn.h>            // types and prototypes only: do not link CUDA::cusolver
//   #include <shrink/cuda_library.hpp>
//
//   const shrink::cuda_library& cusolver() {
//       static const shrink::cuda_library lib("cusolver", CUSOLVER_VER_MAJOR);
//       return lib;
//   }
//   auto gesvd = cusolver().symbol<decltype(cusolverDnDgesvd)>("cusolverDnDgesvd");
//
// Name the function the header's macro expands to where there is one (cuBLAS's
// cublasCreate is cublasCreate_v2). Failures throw std::runtime_error naming the library
// file and symbol, which the host reports as the stage's error.
#pragma once

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace shrink {

class cuda_library {
  public:
    /// Opens lib<name>.so.<major> (the soname the toolkit's headers were built against).
    cuda_library(const std::string& name, int major) : file_("lib" + name + ".so." + std::to_string(major)) {
        // Never closed: CUDA libraries register exit handlers with the driver.
        handle_ = dlopen(file_.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle_) {
            const char* why = dlerror();
            throw std::runtime_error("cannot open " + file_ + ": " + (why ? why : "unknown error"));
        }
    }
    cuda_library(const cuda_library&) = delete;
    cuda_library& operator=(const cuda_library&) = delete;

    /// The function `name`, typed as F (a function type: decltype(cublasSgemm_v2)).
    template <class F>
    F* symbol(const char* name) const {
        dlerror();
        void* p = dlsym(handle_, name);
        if (!p) throw std::runtime_error(file_ + " has no symbol " + name);
        return reinterpret_cast<F*>(p);
    }

    const std::string& file() const { return file_; }

  private:
    std::string file_;
    void* handle_ = nullptr;
};

}  // namespace shrink
