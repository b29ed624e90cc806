// cuBLAS and cuSOLVER as the host calls them: through pointers resolved when the first
// CUDA context is made, not linked. Linked, they cost every shrink command about 185 MB
// of resident memory and 0.4 s at start, GPU or not (shrink/cuda_library.hpp says why).
#pragma once

#include <cublas_v2.h>
#include <cusolverDn.h>

namespace shrink::gpu {

/// The cuBLAS calls the host makes. The _v2 names are what cublas_v2.h's macros expand to.
struct cublas_calls {
    decltype(cublasCreate_v2)* create;
    decltype(cublasSetStream_v2)* set_stream;
    decltype(cublasSetMathMode)* set_math_mode;
    decltype(cublasGetStatusName)* status_name;
    decltype(cublasSgemm_v2)* sgemm;
    decltype(cublasSgemmStridedBatched)* sgemm_strided_batched;
};

/// The cuSOLVER calls the host makes (a plugin resolves its own: see factorizer_svd).
struct cusolver_calls {
    decltype(cusolverDnCreate)* create;
    decltype(cusolverDnSetStream)* set_stream;
};

/// Opened and resolved on the first call; throws std::runtime_error naming the library
/// file or symbol that is missing.
const cublas_calls& cublas();
const cusolver_calls& cusolver();

}  // namespace shrink::gpu
