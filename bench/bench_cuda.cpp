// The GPU against this machine's limits: device-to-device copy bandwidth (cudaMemcpy, the
// ceiling for a kernel that reads and writes memory once), RTN of a 4096x4096 float matrix
// in each granularity (data on the device; bytes moved = floats read + codes and scales
// written), and float inference of a model at batch 1 and 256 on the CUDA runtime and the
// CPU engine (host input to host output, transfers included). One JSON object per line.
//   build/bin/bench_cuda MODEL [cpu_threads]
#include "cpu/threading.hpp"
#include "cuda/cuda.hpp"
#include "cuda/context.hpp"
#include "onnx/import.hpp"
#include "rtn_cuda.hpp"
#include "cpu/engine.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

using namespace shrink;

namespace {

/// Median of `reps` timings of f() in seconds, by CUDA events on the stream.
template <class F>
double gpu_seconds(gpu::context& c, int reps, F&& f) {
    cudaEvent_t a, b;
    gpu::check(cudaEventCreate(&a), "event");
    gpu::check(cudaEventCreate(&b), "event");
    f();  // warm up
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        cudaEventRecord(a, c.stream());
        f();
        cudaEventRecord(b, c.stream());
        gpu::check(cudaEventSynchronize(b), "timing");
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms / 1e3);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

/// Median wall time of `reps` calls of f(), after `reps / 5 + 1` warm-up calls.
template <class F>
double wall_seconds(int reps, F&& f) {
    for (int i = 0; i < reps / 5 + 1; ++i) f();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace

static int measure(int argc, char** argv) {
    gpu::context& c = gpu::context::get(0);
    cudaDeviceProp prop{};
    gpu::check(cudaGetDeviceProperties(&prop, 0), "device properties");
    std::printf("{\"device\": \"%s\", \"sms\": %d}\n", prop.name, prop.multiProcessorCount);

    // Copy bandwidth: 1 GiB device to device, counting bytes read and written.
    const size_t copy_bytes = size_t(1) << 30;
    gpu::buffer<char> src(c, copy_bytes), dst(c, copy_bytes);
    cudaMemsetAsync(src.data(), 1, copy_bytes, c.stream());
    const double copy_s = gpu_seconds(c, 10, [&] { cudaMemcpyAsync(dst.data(), src.data(), copy_bytes, cudaMemcpyDeviceToDevice, c.stream()); });
    const double copy_gbs = 2.0 * double(copy_bytes) / copy_s / 1e9;
    std::printf("{\"what\": \"copy\", \"bytes\": %zu, \"us\": %.1f, \"gb_per_s\": %.0f}\n", copy_bytes, copy_s * 1e6, copy_gbs);

    // RTN of 4096 x 4096 floats, already on the device.
    const uint64_t rows = 4096, cols = 4096, n = rows * cols;
    std::vector<float> host(n);
    for (uint64_t i = 0; i < n; ++i) host[i] = float((i * 2654435761u) % 20001) * 1e-4f - 1.0f;
    gpu::buffer<float> w(c, n);
    c.upload(w.data(), host.data(), n * sizeof(float));
    gpu::buffer<int8_t> q(c, n), zeros(c, n);
    gpu::buffer<float> scales(c, n);
    struct mode {
        const char* name;
        rtn::options o;
    };
    for (const mode& md : {mode{"int8 sym per_channel", {8, true, rtn::granularity::per_channel, 0}},
                           mode{"int4 asym per_group 128", {4, false, rtn::granularity::per_group, 128}},
                           mode{"int4 sym per_group 32", {4, true, rtn::granularity::per_group, 32}},
                           mode{"int8 sym per_tensor", {8, true, rtn::granularity::per_tensor, 0}}}) {
        gpu::buffer<float> scratch(c, rtn::cuda::scratch_floats(rows, cols, md.o) + 1);
        const double s = gpu_seconds(c, 20, [&] {
            rtn::cuda::quantize_device(w.data(), rows, cols, md.o, q.data(), scales.data(), zeros.data(), scratch.data(), c.stream());
        });
        const uint64_t groups = md.o.gran == rtn::granularity::per_tensor ? 1
                                : md.o.gran == rtn::granularity::per_channel ? rows
                                                                             : rows * (cols / md.o.group_size);
        const double bytes = double(n) * 5 + double(groups) * (md.o.symmetric ? 4 : 5);
        std::printf("{\"what\": \"rtn %s\", \"us\": %.1f, \"gb_per_s\": %.0f, \"of_copy\": %.2f}\n", md.name, s * 1e6,
                    bytes / s / 1e9, bytes / s / 1e9 / copy_gbs);
    }

    // Inference, host to host.
    cpu::set_thread_count(argc > 2 ? std::atoi(argv[2]) : 2);
    const model m = load_any_model(argv[1]);
    const engine cpu_engine(m);
    const std::unique_ptr<runner> gpu_runner = make_cuda_runner(m, 0);
    for (int64_t batch : {int64_t(1), int64_t(256)}) {
        std::vector<float> x(size_t(batch * m.input_features));
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 255) / 255.0f;
        const double g = wall_seconds(200, [&] { gpu_runner->run(x.data(), batch); });
        const double p = wall_seconds(batch == 1 ? 200 : 20, [&] { cpu_engine.run(x.data(), batch); });
        std::printf("{\"what\": \"inference batch %lld\", \"gpu_us\": %.1f, \"cpu_us\": %.1f, \"cpu_threads\": %d, \"speedup\": %.1f}\n",
                    (long long)batch, g * 1e6, p * 1e6, cpu::thread_count(), p / g);
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_cuda MODEL [cpu_threads]\n");
        return 2;
    }
    try {
        return measure(argc, argv);
    } catch (const std::exception& e) {  // no device, a bad model: a message, not an abort
        std::fprintf(stderr, "bench_cuda: %s\n", e.what());
        return 1;
    }
}
