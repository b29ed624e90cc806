// One CUDA device as the host owns it: a stream, a cuBLAS handle and a cuSOLVER handle
// bound to it, and every allocation and host<->device copy. Made once per device and
// process, on first use.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <cstddef>
#include <string>
#include <utility>

namespace shrink::gpu {

/// Throws std::runtime_error naming `what` and the library's error.
void check(cudaError_t status, const char* what);
void check(cublasStatus_t status, const char* what);
void check(cusolverStatus_t status, const char* what);

class context {
  public:
    /// Device `ordinal`'s context, made current on this thread. Throws when the device is
    /// not there.
    static context& get(int ordinal);

    int ordinal() const { return ordinal_; }
    cudaStream_t stream() const { return stream_; }
    cublasHandle_t cublas() const { return cublas_; }
    cusolverDnHandle_t cusolver();  // made on first use: creating one takes a while

    void* allocate(size_t bytes);
    void release(void* p) noexcept;
    void upload(void* dst, const void* src, size_t bytes);
    /// Waits for the stream's earlier work, then copies.
    void download(void* dst, const void* src, size_t bytes);
    void synchronize();

  private:
    explicit context(int ordinal);
    int ordinal_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    cusolverDnHandle_t cusolver_ = nullptr;
};

/// Device memory for `count` values of T from a context, freed when destroyed.
template <class T>
class buffer {
  public:
    buffer() = default;
    buffer(context& c, size_t count) : c_(&c), count_(count) {
        if (count) data_ = static_cast<T*>(c.allocate(count * sizeof(T)));
    }
    ~buffer() {
        if (data_) c_->release(data_);
    }
    buffer(buffer&& o) noexcept { swap(o); }
    buffer& operator=(buffer&& o) noexcept {
        buffer tmp(std::move(o));
        swap(tmp);
        return *this;
    }
    buffer(const buffer&) = delete;
    buffer& operator=(const buffer&) = delete;

    T* data() const { return data_; }
    size_t size() const { return count_; }

  private:
    void swap(buffer& o) noexcept {
        std::swap(c_, o.c_);
        std::swap(data_, o.data_);
        std::swap(count_, o.count_);
    }
    context* c_ = nullptr;
    T* data_ = nullptr;
    size_t count_ = 0;
};

}  // namespace shrink::gpu
