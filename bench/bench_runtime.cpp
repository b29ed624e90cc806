// Float inference of a shrink model on the CPU engine at batch 1 and batch 256: mean
// time per batch and samples per second. bench/ort_runtime.js times ONNX Runtime on the
// same model exported as ONNX; bench/compare_runtime.sh runs both and prints the ratios.
//   build/bin/bench_runtime MODEL [threads]   (MODEL: .safetensors or .onnx)
#include "cpu/threading.hpp"
#include "onnx/import.hpp"
#include "cpu/engine.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_runtime MODEL [threads]\n");
        return 2;
    }
    shrink::cpu::set_thread_count(argc > 2 ? std::atoi(argv[2]) : 2);
    const shrink::model m = shrink::load_any_model(argv[1]);
    const shrink::engine e(m);
    std::string shape;
    for (int64_t d : m.input_shape.empty() ? std::vector<int64_t>{m.input_features} : m.input_shape)
        shape.append(shape.empty() ? "" : ",").append(std::to_string(d));
    std::printf("{\"input_shape\": \"%s\"}\n", shape.c_str());
    for (int64_t batch : {int64_t(1), int64_t(256)}) {
        std::vector<float> x(size_t(batch * m.input_features));
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 255) / 255.0f;
        // About 0.3 s per repetition, whatever the model's size.
        const auto t0 = std::chrono::steady_clock::now();
        e.run(x.data(), batch);  // also creates the primitives
        const double once = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const int iters = int(std::clamp(0.3 / std::max(once, 1e-7), 10.0, 20000.0));
        for (int i = 0; i < iters / 10; ++i) e.run(x.data(), batch);  // warm up: caches
        double best = 1e30;
        for (int rep = 0; rep < 5; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < iters; ++i) e.run(x.data(), batch);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters);
        }
        std::printf("{\"engine\": \"shrink\", \"batch\": %lld, \"us_per_batch\": %.2f, \"samples_per_s\": %.0f}\n",
                    (long long)batch, best * 1e6, double(batch) / best);
    }
    return 0;
}
