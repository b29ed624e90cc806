#include "cuda/context.hpp"
#include "cuda/math_libraries.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace shrink::gpu {

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

void check(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error(std::string("cuBLAS: ") + what + ": " + gpu::cublas().status_name(status));
}

void check(cusolverStatus_t status, const char* what) {
    if (status != CUSOLVER_STATUS_SUCCESS) throw std::runtime_error(std::string("cuSOLVER: ") + what + ": status " + std::to_string(int(status)));
}

context& context::get(int ordinal) {
    static std::mutex lock;
    // Never destroyed: tearing down handles at exit races the driver's own shutdown.
    static auto* contexts = new std::map<int, std::unique_ptr<context>>;
    std::lock_guard<std::mutex> hold(lock);
    auto it = contexts->find(ordinal);
    if (it == contexts->end()) it = contexts->emplace(ordinal, std::unique_ptr<context>(new context(ordinal))).first;
    check(cudaSetDevice(ordinal), "cudaSetDevice");
    return *it->second;
}

context::context(int ordinal) : ordinal_(ordinal) {
    int count = 0;
    check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (ordinal < 0 || ordinal >= count)
        throw std::runtime_error("CUDA device " + std::to_string(ordinal) + " is not there (" + std::to_string(count) + " visible)");
    check(cudaSetDevice(ordinal), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(gpu::cublas().create(&cublas_), "cublasCreate");
    check(gpu::cublas().set_stream(cublas_, stream_), "cublasSetStream");
    // Plain FP32 products (no TF32): results stay within float rounding of the CPU path.
    check(gpu::cublas().set_math_mode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
}

cusolverDnHandle_t context::cusolver() {
    if (!cusolver_) {
        check(gpu::cusolver().create(&cusolver_), "cusolverDnCreate");
        check(gpu::cusolver().set_stream(cusolver_, stream_), "cusolverDnSetStream");
    }
    return cusolver_;
}

void* context::allocate(size_t bytes) {
    void* p = nullptr;
    // Stream-ordered: a buffer freed by one step is reused by the next without a device sync.
    check(cudaMallocAsync(&p, bytes, stream_), ("allocating " + std::to_string(bytes) + " bytes").c_str());
    return p;
}

void context::release(void* p) noexcept { cudaFreeAsync(p, stream_); }

void context::upload(void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "host-to-device copy");
    // The source is the caller's pageable memory, which may change once we return.
    check(cudaStreamSynchronize(stream_), "host-to-device copy");
}

void context::download(void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "device-to-host copy");
    check(cudaStreamSynchronize(stream_), "device-to-host copy");
}

void context::synchronize() {
    check(cudaGetLastError(), "kernel launch");
    check(cudaStreamSynchronize(stream_), "a kernel on the stream");
}

}  // namespace shrink::gpu
