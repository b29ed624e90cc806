// Prefill and decode speed of a decoder on the CPU engine: a prompt of PROMPT tokens in one
// pass, then DECODE tokens one at a time against the KV cache, each the most likely next
// token. The token ids are fixed ((i x 7919) mod vocab), so llama.cpp can be given the same
// (bench/llama_cpp_speed.js). Best of 3 runs.
//   bench_lm MODEL.safetensors PROMPT DECODE [THREADS]
#include "cpu/engine.hpp"
#include "cpu/threading.hpp"
#include "model/safetensors.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    using namespace shrink;
    if (argc < 4) {
        std::fprintf(stderr, "usage: bench_lm MODEL PROMPT DECODE [THREADS]\n");
        return 2;
    }
    cpu::set_thread_count(argc > 4 ? std::atoi(argv[4]) : 0);
    const model m = load_model(argv[1]);
    const int64_t prompt = std::atoll(argv[2]), decode = std::atoll(argv[3]);
    const engine e(m);
    const int64_t vocab = e.output_width();
    using clock = std::chrono::steady_clock;
    double best_prefill = 1e30, best_decode = 1e30;
    for (int run = 0; run < 4; ++run) {  // the first warms the kernels up and is not counted
        cpu::kv_cache cache;
        std::vector<float> tokens;
        for (int64_t i = 0; i < prompt; ++i) tokens.insert(tokens.end(), {float((i * 7919) % vocab), float(i)});
        const auto t0 = clock::now();
        std::vector<float> logits = e.run_cached(tokens.data(), prompt, cache);
        const auto t1 = clock::now();
        const float* last = logits.data() + (prompt - 1) * vocab;
        for (int64_t i = 0; i < decode; ++i) {
            const float next[2] = {float(std::max_element(last, last + vocab) - last), float(cache.positions)};
            logits = e.run_cached(next, 1, cache);
            last = logits.data();
        }
        const auto t2 = clock::now();
        if (run == 0) continue;
        best_prefill = std::min(best_prefill, std::chrono::duration<double>(t1 - t0).count());
        best_decode = std::min(best_decode, std::chrono::duration<double>(t2 - t1).count());
    }
    std::printf("shrink: prefill %lld tokens %.1f tokens/s, decode %lld tokens %.1f tokens/s (%d threads)\n", (long long)prompt,
                double(prompt) / best_prefill, (long long)decode, double(decode) / best_decode, cpu::thread_count());
    return 0;
}
