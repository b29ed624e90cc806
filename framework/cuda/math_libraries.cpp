#include "cuda/math_libraries.hpp"

#include <shrink/cuda_library.hpp>

namespace shrink::gpu {

const cublas_calls& cublas() {
    static const cublas_calls calls = [] {
        static const cuda_library lib("cublas", CUBLAS_VER_MAJOR);
        return cublas_calls{
            lib.symbol<decltype(cublasCreate_v2)>("cublasCreate_v2"),
            lib.symbol<decltype(cublasSetStream_v2)>("cublasSetStream_v2"),
            lib.symbol<decltype(cublasSetMathMode)>("cublasSetMathMode"),
            lib.symbol<decltype(cublasGetStatusName)>("cublasGetStatusName"),
            lib.symbol<decltype(cublasSgemm_v2)>("cublasSgemm_v2"),
            lib.symbol<decltype(cublasSgemmStridedBatched)>("cublasSgemmStridedBatched"),
        };
    }();
    return calls;
}

const cusolver_calls& cusolver() {
    static const cusolver_calls calls = [] {
        static const cuda_library lib("cusolver", CUSOLVER_VER_MAJOR);
        return cusolver_calls{
            lib.symbol<decltype(cusolverDnCreate)>("cusolverDnCreate"),
            lib.symbol<decltype(cusolverDnSetStream)>("cusolverDnSetStream"),
        };
    }();
    return calls;
}

}  // namespace shrink::gpu
