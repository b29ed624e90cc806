// quantizer.gptq's kernel (plugins/quantizer_gptq) against direct references on small
// layers: the blocked update with the Cholesky factor equal to the OBS update column by
// column in double; its output error below round-to-nearest's on correlated inputs (with
// H = I it is round-to-nearest); the same bytes on 1 and 2 threads; dead inputs, damping.
#include "cpu/threading.hpp"
#include "gptq_kernel.hpp"
#include "hessian_kernel.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace shrink;

namespace {

struct layer_data {
    uint64_t rows, cols, n;
    std::vector<float> w, x;  // w [rows, cols]; x [n, cols]
    std::vector<double> h;    // X^T X
};

/// Inputs with correlated columns (each a mix of a few shared factors plus noise), as a
/// network's activations are; weights N(0, 1).
layer_data correlated(uint64_t rows, uint64_t cols, uint64_t n, uint64_t seed) {
    rng g(seed);
    layer_data d{rows, cols, n, std::vector<float>(rows * cols), std::vector<float>(n * cols), std::vector<double>(cols * cols, 0.0)};
    for (float& v : d.w) v = float(g.normal());
    const uint64_t factors = 4;
    std::vector<double> mix(factors * cols);
    for (double& v : mix) v = g.normal();
    for (uint64_t s = 0; s < n; ++s) {
        std::vector<double> f(factors);
        for (double& v : f) v = g.normal();
        for (uint64_t c = 0; c < cols; ++c) {
            double v = 0.3 * g.normal();
            for (uint64_t k = 0; k < factors; ++k) v += f[k] * mix[k * cols + c];
            d.x[s * cols + c] = float(v);
        }
    }
    for (uint64_t s = 0; s < n; ++s)
        for (uint64_t i = 0; i < cols; ++i)
            for (uint64_t j = 0; j < cols; ++j) d.h[i * cols + j] += double(d.x[s * cols + i]) * d.x[s * cols + j];
    return d;
}

/// ||(W - Q) X^T||^2: how far the quantized layer's outputs land on the calibration inputs.
double output_error(const layer_data& d, const std::vector<float>& q) {
    double e = 0;
    for (uint64_t s = 0; s < d.n; ++s)
        for (uint64_t r = 0; r < d.rows; ++r) {
            double diff = 0;
            for (uint64_t c = 0; c < d.cols; ++c) diff += (double(d.w[r * d.cols + c]) - q[r * d.cols + c]) * d.x[s * d.cols + c];
            e += diff * diff;
        }
    return e;
}

std::vector<double> identity(uint64_t n) {
    std::vector<double> h(n * n, 0.0);
    for (uint64_t i = 0; i < n; ++i) h[i * n + i] = 1;
    return h;
}

}  // namespace

TEST_CASE("GPTQ's blocked update equals the OBS update column by column in double", "[gptq]") {
    const layer_data d = correlated(24, 64, 400, 1);
    for (const gptq::options o : {gptq::options{4, false, 16, false, 0.01, 8}, gptq::options{3, true, 0, false, 0.01, 5},
                                  gptq::options{4, false, 16, true, 0.01, 16}, gptq::options{8, true, 32, true, 0.05, 64}}) {
        INFO("bits " << o.bits << " group " << o.group_size << " act_order " << o.act_order << " block " << o.block_size);
        const gptq::result fast = gptq::quantize(d.w.data(), d.rows, d.cols, d.h, o);
        const gptq::result slow = gptq::quantize_reference(d.w.data(), d.rows, d.cols, d.h, o);
        uint64_t differ = 0;
        for (size_t i = 0; i < fast.q.size(); ++i) differ += fast.q[i] != slow.q[i];
        CHECK(differ <= fast.q.size() / 500);  // a rounding tie may fall the other way
        const double ef = output_error(d, gptq::dequantize(fast, d.rows, d.cols)),
                     es = output_error(d, gptq::dequantize(slow, d.rows, d.cols));
        CHECK(ef == Approx(es).epsilon(0.01));
    }
}

TEST_CASE("GPTQ's output error is below round-to-nearest's on correlated inputs; with H = I it is round-to-nearest", "[gptq]") {
    const layer_data d = correlated(32, 128, 600, 2);
    for (const int bits : {4, 3}) {
        const gptq::options o{bits, false, 32, false, 0.01, 128};
        const gptq::result rtn = gptq::quantize(d.w.data(), d.rows, d.cols, identity(d.cols), o);
        const gptq::result g = gptq::quantize(d.w.data(), d.rows, d.cols, d.h, o);
        gptq::options ordered = o;
        ordered.act_order = true;
        const gptq::result ga = gptq::quantize(d.w.data(), d.rows, d.cols, d.h, ordered);
        const double e_rtn = output_error(d, gptq::dequantize(rtn, d.rows, d.cols)), e_gptq = output_error(d, gptq::dequantize(g, d.rows, d.cols)),
                     e_order = output_error(d, gptq::dequantize(ga, d.rows, d.cols));
        INFO("bits " << bits << ": RTN " << e_rtn << ", GPTQ " << e_gptq << ", GPTQ act_order " << e_order);
        CHECK(e_gptq < 0.7 * e_rtn);
        CHECK(e_order < 0.7 * e_rtn);
        // With H = I nothing propagates: every code is the nearest level of the weight itself.
        const std::vector<float> back = gptq::dequantize(rtn, d.rows, d.cols);
        const uint64_t groups = d.cols / 32;
        for (uint64_t r = 0; r < d.rows; ++r)
            for (uint64_t c = 0; c < d.cols; ++c) {
                const float s = rtn.scales[r * groups + c / 32];
                CHECK(std::fabs(back[r * d.cols + c] - d.w[r * d.cols + c]) <= 0.5f * s * 1.0001f + 1e-6f);
            }
    }
}

TEST_CASE("GPTQ gives the same bytes on 1 and 2 threads, zeroes dead inputs and raises damping when it must", "[gptq]") {
    // Wide enough for the blocked Cholesky's products to have a long inner dimension (on
    // which oneDNN splits work across threads), the Hessian from calibrator.hessian's sum.
    const uint64_t rows = 256, cols = 1536, n = 2048;
    layer_data big = correlated(rows, cols, 0, 4);
    rng g(5);
    std::vector<float> x(n * cols);
    for (float& v : x) v = float(g.normal());
    for (uint64_t s = 0; s < n; ++s)
        for (uint64_t c = 1; c < cols; ++c) x[s * cols + c] += 0.8f * x[s * cols + c - 1];  // neighbours correlate
    hessian::accumulate_lower(big.h, x.data(), n, cols);
    hessian::mirror(big.h, cols);
    for (const gptq::options o : {gptq::options{4, false, 128, false, 0.01, 128}, gptq::options{3, true, 64, true, 0.01, 96}}) {
        gptq::result one, two;
        cpu::set_thread_count(1);
        one = gptq::quantize(big.w.data(), rows, cols, big.h, o);
        cpu::set_thread_count(2);
        two = gptq::quantize(big.w.data(), rows, cols, big.h, o);
        cpu::set_thread_count(0);
        INFO("act_order " << o.act_order);
        CHECK(one.q == two.q);
        CHECK(one.scales == two.scales);
        CHECK(one.zero_points == two.zero_points);
    }
    layer_data d = correlated(40, 48, 300, 3);
    const gptq::options o{4, false, 16, true, 0.01, 16};
    // An input that was always 0 (its diagonal 0): its weights quantize to 0.
    for (uint64_t j = 0; j < d.cols; ++j) d.h[5 * d.cols + j] = d.h[j * d.cols + 5] = 0;
    const gptq::result dead = gptq::quantize(d.w.data(), d.rows, d.cols, d.h, o);
    const std::vector<float> back = gptq::dequantize(dead, d.rows, d.cols);
    for (uint64_t r = 0; r < d.rows; ++r) CHECK(back[r * d.cols + 5] == 0.0f);
    // An indefinite H: damping rises tenfold until Cholesky succeeds, and says how far.
    std::vector<double> bad = identity(d.cols);
    bad[0] = -0.5;  // one negative eigenvalue; the mean diagonal stays about 1
    const gptq::result raised = gptq::quantize(d.w.data(), d.rows, d.cols, bad, o);
    CHECK(raised.damp_raised == 2);  // 0.01 and 0.1 fail, 1.0 holds
    CHECK(raised.damp == Approx(1.0));
    std::vector<double> hopeless = identity(d.cols);
    for (uint64_t i = 0; i < d.cols; ++i) hopeless[i * d.cols + i] = i == 0 ? -1e12 : 1;
    CHECK_THROWS_WITH(gptq::quantize(d.w.data(), d.rows, d.cols, hopeless, o), Catch::Contains("not positive definite even with damping"));
}

TEST_CASE("a recipe runs calibrator.hessian then quantizer.gptq; GPTQ without fresh Hessians is refused", "[gptq][cli]") {
    test::temp_dir dir;
    save_model(test::tiny_model(4), dir / "m.safetensors");
    auto recipe = [](const std::string& stages) {
        return "version: 1\nname: t\nseed: 1\nmodel: m.safetensors\ndata:\n  calibration: { dataset: fashion-mnist, split: train, samples: 256 }\n"
               "  preprocess: { scale: 0.00392156862745098 }\nstages:\n" + stages;
    };
    test::write_text(dir / "r.yaml", recipe("  - { id: h, use: calibrator.hessian }\n"
                                            "  - { id: g, use: quantizer.gptq, params: { bits: 4, group_size: 8 } }\n"
                                            "  - { id: g3, use: quantizer.gptq, after: h, params: { bits: 3, group_size: 8 } }\n"
                                            "  - { id: r3, use: quantizer.rtn, after: [], params: { bits: 3, scheme: asymmetric, "
                                            "granularity: per_group, group_size: 8 } }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    const model q = load_model(dir / "run" / "models" / "g.safetensors");
    for (const layer& l : q.layers)
        if (l.op == "linear") CHECK(q.at(l.weight).quant);
    // 3-bit grids in the 4-bit container: codes in [-4, 3], and the files verify.
    for (const char* name : {"g3", "r3"}) {
        const model three = load_model(dir / "run" / "models" / (std::string(name) + ".safetensors"));
        for (const layer& l : three.layers) {
            if (l.op != "linear") continue;
            const tensor& t = three.at(l.weight);
            REQUIRE(t.quant);
            CHECK(t.quant->bits == 4);
            const std::vector<float> back = t.decode();
            const uint64_t groups = t.scales.size() / uint64_t(t.shape[0]);
            for (uint64_t r = 0; r < uint64_t(t.shape[0]); ++r)
                for (uint64_t c = 0; c < uint64_t(t.shape[1]); ++c) {
                    const uint64_t k = r * groups + c / 8;
                    const double code = back[r * uint64_t(t.shape[1]) + c] / t.scales[k] + t.zero_points[k];
                    CHECK(code >= -4 - 1e-3);
                    CHECK(code <= 3 + 1e-3);
                }
        }
        CHECK(test::shrink_cli("verify " + (dir / "run" / "models" / (std::string(name) + ".safetensors")).string()).code == 0);
    }
    test::write_text(dir / "stale.yaml", recipe("  - { id: h, use: calibrator.hessian }\n"
                                                "  - { id: p, use: pruner.magnitude, params: { sparsity: 0.5 } }\n"
                                                "  - { id: g, use: quantizer.gptq }\n"));
    const auto stale = test::shrink_cli("validate " + (dir / "stale.yaml").string());
    INFO(stale.output);
    CHECK(stale.code == 1);
    CHECK(stale.output.find("requires 'hessians'") != std::string::npos);
}

TEST_CASE("quantizer.gptq on a model with convolutions asks for its linear layers by name", "[gptq][cli]") {
    test::temp_dir dir;
    save_model(test::tiny_cnn(4, 28), dir / "cnn.safetensors");
    auto recipe = [](const std::string& gptq) {
        return "version: 1\nname: t\nseed: 1\nmodel: cnn.safetensors\ndata:\n  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
               "  preprocess: { scale: 0.00392156862745098 }\nstages:\n  - { id: h, use: calibrator.hessian }\n" + gptq;
    };
    test::write_text(dir / "all.yaml", recipe("  - { id: g, use: quantizer.gptq, params: { group_size: 0 } }\n"));
    const auto all = test::shrink_cli("run " + (dir / "all.yaml").string() + " --out " + (dir / "all").string());
    INFO(all.output);
    CHECK(all.code == 3);  // at once, not after a model that fails its check
    CHECK(all.output.find("has conv layers ('conv1', 'conv2'): list the linear layers to quantize in params.layers") != std::string::npos);
    test::write_text(dir / "fc.yaml", recipe("  - { id: g, use: quantizer.gptq, params: { group_size: 0, layers: [fc1] } }\n"));
    const auto fc = test::shrink_cli("run " + (dir / "fc.yaml").string() + " --out " + (dir / "fc").string());
    INFO(fc.output);
    CHECK(fc.code == 0);
}
