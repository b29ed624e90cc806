// Benchmark of GPTQ on the reference size: a 4096 x 4096 linear layer with 2048
// calibration tokens. It times calibrator.hessian's sum (X^T X) and quantizer.gptq's
// kernel (4 bits, groups of 128, blocks of 128) on 2 threads, next to the floor the
// machine sets: the flops of a blocked GPTQ that are matrix products (the Hessian's lower
// half, Cholesky, a triangular inverse, the lazy updates: 149 GFLOP, the floor) at
// the sgemm rate measured in the same run. Ours needs no inverse (gptq_kernel.cpp,
// scaled_factor), so its products are 126 GFLOP. It also checks the bytes are the same on 1 thread, and how far GPTQ's layer
// output lands from the float layer's next to round-to-nearest's (H = I), on the same
// inputs: ||(W - Q) X^T|| / ||W X^T||.
//
//   build/bin/bench_gptq [repetitions]
#include "gptq_kernel.hpp"
#include "hessian_kernel.hpp"
#include "timing.hpp"
#include "util/machine.hpp"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr uint64_t n = 4096, tokens = 2048;

double seconds(const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::unique_ptr<tbb::global_control> threads(int count) {
    omp_set_num_threads(count);
    return std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, size_t(count));
}

void sgemm(char ta, char tb, uint64_t m, uint64_t nn, uint64_t k, const float* a, uint64_t lda, const float* b, uint64_t ldb, float* c) {
    dnnl_sgemm(ta, tb, int64_t(m), int64_t(nn), int64_t(k), 1.0f, a, int64_t(lda), b, int64_t(ldb), 0.0f, c, int64_t(nn));
}

/// ||(W - Q) X^T||_F for Q given as a GPTQ result, via one product.
double output_error(const std::vector<float>& w, const gptq::result& r, const std::vector<float>& x) {
    std::vector<float> d = gptq::dequantize(r, n, n), y(n * tokens);
    for (uint64_t i = 0; i < d.size(); ++i) d[i] = w[i] - d[i];
    sgemm('N', 'T', n, tokens, n, d.data(), n, x.data(), n, y.data());
    double s = 0;
    for (float v : y) s += double(v) * v;
    return std::sqrt(s);
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
    // Weights N(0, 0.02); inputs a mix of 32 shared factors plus noise (correlated channels, as
    // a network's activations are), eight channels twenty times larger (an LLM's outliers).
    std::mt19937_64 gen(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> w(n * n), x(tokens * n), mix(32 * n);
    for (float& v : w) v = 0.02f * normal(gen);
    for (float& v : mix) v = normal(gen);
    for (uint64_t t = 0; t < tokens; ++t) {
        float f[32];
        for (float& v : f) v = normal(gen);
        for (uint64_t c = 0; c < n; ++c) {
            float v = 0.5f * normal(gen);
            for (int k = 0; k < 32; ++k) v += 0.2f * f[k] * mix[k * n + c];
            x[t * n + c] = c % 512 == 7 ? 20 * v : v;
        }
    }
    std::printf("GPTQ on a %llux%llu layer with %llu calibration tokens; CPU: %s; best of %d\n", (unsigned long long)n,
                (unsigned long long)n, (unsigned long long)tokens, shrink::cpu_model().c_str(), reps);

    auto two = threads(2);
    std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
    const double gemm_s = best_seconds(reps, [&] { sgemm('N', 'N', n, n, n, a.data(), n, b.data(), n, c.data()); });
    const double peak = 2.0 * n * n * n / gemm_s / 1e9;
    const double nd = double(n), gemm_flops = nd * nd * tokens + 2 * nd * nd * nd / 3 + nd * nd * nd;  // H lower, Cholesky + inverse, updates
    const double our_flops = gemm_flops - nd * nd * nd / 3;                                           // no inverse
    std::printf("sgemm 4096^3 on 2 threads: %.1f GFLOP/s\n", peak);

    std::vector<double> h;
    const double hessian_s = best_seconds(reps, [&] {
        h.assign(n * n, 0.0);
        hessian::accumulate_lower(h, x.data(), tokens, n);
        hessian::mirror(h, n);
    });
    const gptq::options o{4, false, 128, false, 0.01, 128};
    gptq::result q2;
    const double gptq_s = best_seconds(reps, [&] { q2 = gptq::quantize(w.data(), n, n, h, o); });
    gptq::options ordered = o;
    ordered.act_order = true;
    gptq::result qa;
    const double order_s = best_seconds(reps, [&] { qa = gptq::quantize(w.data(), n, n, h, ordered); });
    std::printf("%-34s %8.3f s\n", "Hessian X^T X (calibrator.hessian)", hessian_s);
    std::printf("%-34s %8.3f s\n", "GPTQ W4 g128", gptq_s);
    std::printf("%-34s %8.3f s\n", "Hessian + GPTQ", hessian_s + gptq_s);
    std::printf("%-34s %8.3f s\n", "GPTQ W4 g128 act_order", order_s);
    std::printf("%-34s %8.3f s  (%.0f GFLOP of products at %.1f GFLOP/s)\n", "GEMM floor, Hessian + GPTQ", gemm_flops / 1e9 / peak,
                gemm_flops / 1e9, peak);
    std::printf("%-34s %8.3f s  (%.0f GFLOP: no inverse)\n", "  the same for our products", our_flops / 1e9 / peak, our_flops / 1e9);
    std::printf("%-34s %8.2f x\n", "Hessian + GPTQ over the floor", (hessian_s + gptq_s) / (gemm_flops / 1e9 / peak));
    two.reset();

    gptq::result q1;
    {
        auto one = threads(1);
        std::printf("%-34s %8.3f s\n", "GPTQ W4 g128, 1 thread", seconds([&] { q1 = gptq::quantize(w.data(), n, n, h, o); }));
    }
    const bool same = q1.q == q2.q && q1.scales == q2.scales && q1.zero_points == q2.zero_points;
    std::printf("same bytes on 1 and 2 threads: %s\n", same ? "yes" : "NO");

    two = threads(2);
    std::vector<double> identity(n * n, 0.0);
    for (uint64_t i = 0; i < n; ++i) identity[i * n + i] = 1;
    const gptq::result rtn = gptq::quantize(w.data(), n, n, identity, o);
    std::vector<float> y(n * tokens);
    sgemm('N', 'T', n, tokens, n, w.data(), n, x.data(), n, y.data());
    double norm = 0;
    for (float v : y) norm += double(v) * v;
    norm = std::sqrt(norm);
    std::printf("relative output error: RTN %.5f, GPTQ %.5f, GPTQ act_order %.5f\n", output_error(w, rtn, x) / norm,
                output_error(w, q2, x) / norm, output_error(w, qa, x) / norm);
    return same ? 0 : 1;
}
