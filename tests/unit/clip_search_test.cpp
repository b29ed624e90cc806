// The clip searches of calibrator.percentile, .mse and .entropy (plugins/calibrator_clip)
// against direct computations on known data: the percentile where the data put it, the
// MSE and KL choices at the minimum of their grid, and the chosen ranges quantizing the
// raw samples with less error than the full range when outliers stretch it.
#include "clip_search.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

using namespace shrink;

namespace {

/// Laplace(0, 1) activations: most near 0, a long thin tail.
std::vector<float> laplace(size_t n, uint64_t seed) {
    rng g(seed);
    std::vector<float> x(n);
    for (float& v : x) {
        const double u = g.uniform() - 0.5;
        v = float((u < 0 ? 1 : -1) * std::log(1 - 2 * std::fabs(u)));
    }
    return x;
}

clip::histogram histogram_of(const std::vector<float>& x) {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    clip::histogram h(std::min(0.0, double(*lo)), std::max(0.0, double(*hi)), 2048);
    h.add(x.data(), x.size());
    return h;
}

/// What the runtime does to a value with an 8-bit range (fake quantization), squared error.
double empirical_mse(const std::vector<float>& x, const clip::range& r) {
    const double scale = (r.hi - r.lo) / 255.0, zero = std::nearbyint(-r.lo / scale);
    double e = 0;
    for (float v : x) {
        const double q = std::clamp(std::nearbyint(v / scale) + zero, 0.0, 255.0);
        e += (v - (q - zero) * scale) * (v - (q - zero) * scale);
    }
    return e / double(x.size());
}

}  // namespace

TEST_CASE("calibrator.percentile's range lies where the data put the percentiles", "[clip]") {
    std::vector<float> x;
    for (int i = 0; i < 100000; ++i) x.push_back(-1.0f + 4.0f * float(i) / 99999.0f);  // uniform on [-1, 3]
    const clip::histogram h = histogram_of(x);
    const clip::range r = clip::percentile_range(h, 99);
    CHECK(r.lo == Approx(-1 + 0.04).margin(0.003));
    CHECK(r.hi == Approx(3 - 0.04).margin(0.003));
    const clip::range all = clip::percentile_range(h, 100);
    CHECK(all.lo == Approx(-1).margin(0.003));
    CHECK(all.hi == Approx(3).margin(0.003));
    // Positive data only: the range still holds 0.
    for (float& v : x) v = std::fabs(v) + 1;
    CHECK(clip::percentile_range(histogram_of(x), 99).lo == 0);
    CHECK_THROWS(clip::percentile_range(h, 40));
}

TEST_CASE("calibrator.mse and .entropy pick the minimum of their grid and clip a long tail", "[clip]") {
    const std::vector<float> x = laplace(1000000, 3);
    const clip::histogram h = histogram_of(x);
    const clip::range full{h.lo, h.hi};
    const clip::range mse = clip::mse_range(h), kl = clip::entropy_range(h);
    for (double t : clip::candidate_scales()) {
        const clip::range r{h.lo * t, h.hi * t};
        CHECK(clip::quantization_mse(h, mse) <= clip::quantization_mse(h, r));
        CHECK(clip::quantization_kl(h, kl) <= clip::quantization_kl(h, r));
    }
    INFO("mse range [" << mse.lo << ", " << mse.hi << "], entropy range [" << kl.lo << ", " << kl.hi << "], full [" << full.lo << ", "
                       << full.hi << "]");
    // ACIQ (Banner et al. 2019) puts the MSE-optimal 8-bit clip of Laplace(0, b) at 9.89 b.
    CHECK(mse.hi == Approx(9.89).epsilon(0.15));
    CHECK(kl.hi < full.hi);
    // On the raw samples, as the runtime quantizes them, the MSE choice beats the full range.
    CHECK(empirical_mse(x, mse) < empirical_mse(x, full));
    // The analytic estimate tracks the measured error within 20%.
    CHECK(clip::quantization_mse(h, mse) == Approx(empirical_mse(x, mse)).epsilon(0.2));
}

TEST_CASE("without outliers the clip searches keep (nearly) the whole range", "[clip]") {
    std::vector<float> x;
    rng g(5);
    for (int i = 0; i < 100000; ++i) x.push_back(float(g.uniform() * 2 - 1));  // uniform on [-1, 1]
    const clip::histogram h = histogram_of(x);
    CHECK(clip::mse_range(h).hi > 0.95 * h.hi);
    CHECK(clip::entropy_range(h).hi > 0.9 * h.hi);
}

TEST_CASE("the clipping calibrators give quantizer.rtn int8 input ranges no wider than min/max", "[clip][cli]") {
    test::temp_dir dir;
    save_model(test::tiny_model(3), dir / "m.safetensors");
    std::string stages;
    for (const char* c : {"minmax", "percentile", "mse", "entropy"})
        stages += std::string("  - { id: ") + c + ", use: calibrator." + c + ", after: [] }\n  - { id: q-" + c +
                  ", use: quantizer.rtn, params: { bits: 8, granularity: per_channel, activation_bits: 8 } }\n";
    test::write_text(dir / "r.yaml", "version: 1\nname: t\nseed: 1\nmodel: m.safetensors\ndata:\n"
                                     "  calibration: { dataset: fashion-mnist, split: train, samples: 256 }\n"
                                     "  preprocess: { scale: 0.00392156862745098 }\nstages:\n" + stages);
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const model minmax = load_model(dir / "run" / "models" / "q-minmax.safetensors");
    for (const char* c : {"percentile", "mse", "entropy"}) {
        const model clipped = load_model(dir / "run" / "models" / (std::string("q-") + c + ".safetensors"));
        for (size_t i = 0; i < minmax.layers.size(); ++i) {
            if (!minmax.layers[i].input_quantization) continue;
            INFO(c << " " << minmax.layers[i].name);
            REQUIRE(clipped.layers[i].input_quantization);
            CHECK(clipped.layers[i].input_quantization->scale <= minmax.layers[i].input_quantization->scale);
        }
    }
}
