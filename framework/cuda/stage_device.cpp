// The shrink_cuda table a stage's plugin gets: the device's context behind C function
// pointers, plus a record of the stage's allocations so that none outlives the stage.
#include "cuda/cuda.hpp"
#include "cuda/context.hpp"
#include "util/c_guard.hpp"

#include <set>
#include <stdexcept>

namespace shrink {

namespace {

class stage_device final : public cuda_stage_device {
  public:
    explicit stage_device(int ordinal) : c_(gpu::context::get(ordinal)) {
        table_.struct_size = sizeof table_;
        table_.ctx = this;
        table_.ordinal = ordinal;
        table_.stream = c_.stream();
        table_.cublas = c_.cublas();
        table_.cusolver = c_.cusolver();
        table_.alloc = &alloc;
        table_.release = &release;
        table_.upload = &upload;
        table_.download = &download;
        table_.synchronize = &synchronize;
    }
    ~stage_device() override {
        for (void* p : live_) c_.release(p);
        cudaStreamSynchronize(c_.stream());
    }
    const shrink_cuda* table() const override { return &table_; }

  private:
    static stage_device& self(void* ctx) { return *static_cast<stage_device*>(ctx); }
    static shrink_status alloc(void* ctx, uint64_t bytes, void** out, shrink_error* e) {
        return guarded(e, [&] {
            if (!out) throw std::invalid_argument("alloc: out is NULL");
            *out = self(ctx).c_.allocate(bytes);
            self(ctx).live_.insert(*out);
        });
    }
    static void release(void* ctx, void* p) {
        if (p && self(ctx).live_.erase(p)) self(ctx).c_.release(p);
    }
    static shrink_status upload(void* ctx, void* dst, const void* src, uint64_t bytes, shrink_error* e) {
        return guarded(e, [&] { self(ctx).c_.upload(dst, src, bytes); });
    }
    static shrink_status download(void* ctx, void* dst, const void* src, uint64_t bytes, shrink_error* e) {
        return guarded(e, [&] { self(ctx).c_.download(dst, src, bytes); });
    }
    static shrink_status synchronize(void* ctx, shrink_error* e) {
        return guarded(e, [&] { self(ctx).c_.synchronize(); });
    }

    gpu::context& c_;
    shrink_cuda table_{};
    std::set<void*> live_;
};

}  // namespace

std::unique_ptr<cuda_stage_device> open_cuda_stage_device(int ordinal) { return std::make_unique<stage_device>(ordinal); }

}  // namespace shrink
