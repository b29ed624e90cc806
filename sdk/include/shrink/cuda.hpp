// shrink plugin SDK: the GPU a stage runs on, over the host's shrink_cuda service.
//
// Header-only and free of CUDA headers, so a plugin's plain C++ files can hold device
// buffers; its .cu files cast stream() to cudaStream_t and launch kernels on it. Memory
// comes from the host and bytes cross only through it, so a plugin never calls
// cudaMalloc or cudaMemcpy itself.
//
//   void run(shrink::stage_context& ctx) {
//       if (ctx.on_cuda()) {
//           shrink::cuda_device gpu = ctx.cuda();
//           auto w = gpu.upload(ctx.model().read("fc1.weight"));   // device_buffer<float>
//           my_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(gpu.stream())>>>(w.data(), ...);
//           std::vector<float> back = gpu.download(w);              // waits for the stream
//       }
//   }
#pragma once

#include <shrink/abi.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace shrink {

namespace detail {
inline void check_cuda(shrink_status status, const shrink_error& error) {
    if (status != SHRINK_OK) throw std::runtime_error(error.message);
}
}  // namespace detail

/// Device memory for `count` values of T, released through the host when destroyed.
template <class T>
class device_buffer {
  public:
    device_buffer() = default;
    device_buffer(const shrink_cuda* c, size_t count) : c_(c), count_(count) {
        if (count == 0) return;
        shrink_error e{};
        void* p = nullptr;
        detail::check_cuda(c_->alloc(c_->ctx, uint64_t(count) * sizeof(T), &p, &e), e);
        data_ = static_cast<T*>(p);
    }
    ~device_buffer() { reset(); }
    device_buffer(device_buffer&& o) noexcept { swap(o); }
    device_buffer& operator=(device_buffer&& o) noexcept {
        if (this != &o) {
            reset();
            swap(o);
        }
        return *this;
    }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;

    T* data() const { return data_; }
    size_t size() const { return count_; }
    size_t bytes() const { return count_ * sizeof(T); }

  private:
    void reset() {
        if (data_) c_->release(c_->ctx, data_);
        data_ = nullptr;
        count_ = 0;
    }
    void swap(device_buffer& o) noexcept {
        std::swap(c_, o.c_);
        std::swap(data_, o.data_);
        std::swap(count_, o.count_);
    }
    const shrink_cuda* c_ = nullptr;
    T* data_ = nullptr;
    size_t count_ = 0;
};

/// The stage's GPU. Cheap to copy: it only points at the host's service.
class cuda_device {
  public:
    explicit cuda_device(const shrink_cuda* c) : c_(c) {
        if (!c_ || c_->struct_size < sizeof(shrink_cuda)) throw std::runtime_error("this shrink host offers no CUDA device service");
    }

    int ordinal() const { return c_->ordinal; }
    void* stream() const { return c_->stream; }      // cudaStream_t
    void* cublas() const { return c_->cublas; }      // cublasHandle_t
    void* cusolver() const { return c_->cusolver; }  // cusolverDnHandle_t
    const shrink_cuda* raw() const { return c_; }

    template <class T>
    device_buffer<T> allocate(size_t count) const {
        return device_buffer<T>(c_, count);
    }
    template <class T>
    device_buffer<T> upload(const T* src, size_t count) const {
        device_buffer<T> b(c_, count);
        copy_to(b, src, count);
        return b;
    }
    template <class T>
    device_buffer<T> upload(const std::vector<T>& v) const {
        return upload(v.data(), v.size());
    }
    template <class T>
    void copy_to(device_buffer<T>& dst, const T* src, size_t count) const {
        if (count > dst.size()) throw std::runtime_error("upload larger than its device buffer");
        shrink_error e{};
        if (count) detail::check_cuda(c_->upload(c_->ctx, dst.data(), src, uint64_t(count) * sizeof(T), &e), e);
    }
    /// Waits for the stream, then copies the first `count` values (all when count is 0).
    template <class T>
    std::vector<T> download(const device_buffer<T>& src, size_t count = 0) const {
        std::vector<T> out(count ? count : src.size());
        if (out.size() > src.size()) throw std::runtime_error("download larger than its device buffer");
        shrink_error e{};
        if (!out.empty()) detail::check_cuda(c_->download(c_->ctx, out.data(), src.data(), uint64_t(out.size()) * sizeof(T), &e), e);
        return out;
    }
    /// Waits for every kernel on the stream; throws with the CUDA error when one failed.
    void synchronize() const {
        shrink_error e{};
        detail::check_cuda(c_->synchronize(c_->ctx, &e), e);
    }

  private:
    const shrink_cuda* c_;
};

}  // namespace shrink
