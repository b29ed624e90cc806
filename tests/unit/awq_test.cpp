// quantizer.awq (plugins/quantizer_rtn/awq.hpp) against direct references: its output
// error is tr(dW H dW^T) computed in double; exponent 0 is round-to-nearest; the search
// picks its grid's minimum, which on inputs with a few salient channels is below RTN's;
// its clipped RTN is RTN with one clip step and otherwise moves the output less; on a
// decoder it scales every group it can fold and quantizes every linear layer.
#include "awq.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

using namespace shrink;

namespace {

struct layer_data {
    uint64_t rows = 24, d = 64, n = 500;
    std::vector<float> w, x, h, mean;
};

/// Inputs whose channels 0..3 are ten times the rest (salient, as AWQ finds in LLMs).
layer_data salient(uint64_t seed) {
    layer_data t;
    rng g(seed);
    t.w.resize(t.rows * t.d), t.x.resize(t.n * t.d), t.h.assign(t.d * t.d, 0.0f), t.mean.assign(t.d, 0.0f);
    for (float& v : t.w) v = float(g.normal());
    for (uint64_t s = 0; s < t.n; ++s)
        for (uint64_t j = 0; j < t.d; ++j) t.x[s * t.d + j] = float(g.normal() * (j < 4 ? 10.0 : 1.0));
    std::vector<double> h(t.d * t.d, 0.0);
    for (uint64_t s = 0; s < t.n; ++s)
        for (uint64_t a = 0; a < t.d; ++a) {
            t.mean[a] += std::fabs(t.x[s * t.d + a]) / float(t.n);
            for (uint64_t b = 0; b < t.d; ++b) h[a * t.d + b] += double(t.x[s * t.d + a]) * t.x[s * t.d + b];
        }
    t.h.assign(h.begin(), h.end());
    return t;
}

rtn::options group_rtn(int bits) {
    rtn::options o;
    o.bits = bits, o.symmetric = false, o.gran = rtn::granularity::per_group, o.group_size = 32;
    return o;
}

}  // namespace

TEST_CASE("AWQ's output error is tr(dW H dW^T); exponent 0 is round-to-nearest; the search picks its grid's minimum", "[awq]") {
    const layer_data t = salient(1);
    for (const int bits : {4, 3}) {
        const rtn::options o = group_rtn(bits);
        // Exponent 0: every scale 1, the codes RTN's, the error ||(Q - W) X^T||^2 in double.
        const std::vector<float> ones = awq::scales_for(t.mean, 0.0);
        CHECK(std::all_of(ones.begin(), ones.end(), [](float s) { return s == 1.0f; }));
        const std::vector<float> q = rtn::dequantize(rtn::quantize(t.w.data(), t.rows, t.d, o), t.rows, t.d);
        double direct = 0;
        for (uint64_t s = 0; s < t.n; ++s)
            for (uint64_t r = 0; r < t.rows; ++r) {
                double y = 0;
                for (uint64_t j = 0; j < t.d; ++j) y += (double(q[r * t.d + j]) - t.w[r * t.d + j]) * t.x[s * t.d + j];
                direct += y * y;
            }
        CHECK(awq::output_error(t.w.data(), t.rows, t.d, ones, t.h, o) == Approx(direct).epsilon(1e-4));
        // The search: its choice is the least error of its grid, and below RTN's here.
        const awq::search_result r = awq::search({{t.w.data(), t.rows}}, t.d, t.h, t.mean, o, 20);
        REQUIRE(r.errors.size() == 20);
        CHECK(r.errors[size_t(r.best)] == *std::min_element(r.errors.begin(), r.errors.end()));
        CHECK(r.errors[0] == Approx(direct).epsilon(1e-4));
        INFO("bits " << bits << ": RTN " << r.errors[0] << ", AWQ " << r.errors[size_t(r.best)] << " at " << r.ratio);
        CHECK(r.best > 0);
        CHECK(r.errors[size_t(r.best)] < 0.9 * r.errors[0]);
        CHECK(r.scales == awq::scales_for(t.mean, r.ratio));
        // The scales are normalised to a geometric mean of their extremes of 1, and the salient
        // channels get the largest.
        const auto [lo, hi] = std::minmax_element(r.scales.begin(), r.scales.end());
        CHECK(double(*lo) * double(*hi) == Approx(1.0));
        CHECK(std::max_element(r.scales.begin(), r.scales.end()) - r.scales.begin() < 4);
    }
}

TEST_CASE("AWQ's clipped RTN is RTN with one clip step, and never moves the output more than RTN", "[awq]") {
    const layer_data t = salient(2);
    for (const int bits : {4, 3}) {
        for (const bool symmetric : {false, true}) {
            rtn::options o = group_rtn(bits);
            o.symmetric = symmetric;
            INFO("bits " << bits << " symmetric " << symmetric);
            const rtn::result plain = rtn::quantize(t.w.data(), t.rows, t.d, o);
            const rtn::result one = awq::quantize_clipped(t.w.data(), t.rows, t.d, t.h, o, 1);
            CHECK(one.q == plain.q);  // c = 1: RTN's own grid, to the bit
            CHECK(one.scales == plain.scales);
            CHECK(one.zero_points == plain.zero_points);
            CHECK(one.group_size == plain.group_size);
            const rtn::result clipped = awq::quantize_clipped(t.w.data(), t.rows, t.d, t.h, o, 20);
            const std::vector<float> ones(t.d, 1.0f);
            auto error = [&](const rtn::result& r) {
                const std::vector<float> back = rtn::dequantize(r, t.rows, t.d);
                double e = 0;
                for (uint64_t row = 0; row < t.rows; ++row)
                    for (uint64_t a = 0; a < t.d; ++a)
                        for (uint64_t b = 0; b < t.d; ++b)
                            if (a / 32 == b / 32)  // within a group: what the clip search weighs
                                e += double(back[row * t.d + a] - t.w[row * t.d + a]) * t.h[a * t.d + b] * (back[row * t.d + b] - t.w[row * t.d + b]);
                return e;
            };
            CHECK(error(clipped) <= error(plain) * (1 + 1e-6));
            CHECK(error(clipped) < 0.95 * error(plain));  // and here it does better
        }
    }
    // Per channel: one group of the whole row.
    rtn::options per_channel = group_rtn(4);
    per_channel.gran = rtn::granularity::per_channel;
    CHECK(awq::quantize_clipped(t.w.data(), t.rows, t.d, t.h, per_channel, 1).q == rtn::quantize(t.w.data(), t.rows, t.d, per_channel).q);
}

TEST_CASE("quantizer.awq scales what it can fold on a decoder and quantizes every linear layer", "[awq][cli]") {
    test::temp_dir dir;
    const test::text_decoder d = test::save_text_lm(dir.path(), 41, 16);
    auto recipe = [](const std::string& stages) {
        return "version: 1\nname: awq\nseed: 3\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
               "  calibration: { dataset: text, path: text.txt, seq_len: 16, samples: 8 }\n"
               "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\nstages:\n" + stages;
    };
    test::write_text(dir / "r.yaml", recipe("  - { id: h, use: calibrator.hessian }\n"
                                            "  - { id: c, use: calibrator.channels }\n"
                                            "  - { id: awq, use: quantizer.awq, params: { bits: 4, group_size: 16 } }\n"
                                            "  - { id: ppl, use: evaluator.perplexity }\n"));
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " --no-cache");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto report = nlohmann::json::parse(test::read_text(dir / "run" / "report.json"));
    nlohmann::json awq;
    for (const auto& s : report["stages"])
        if (s["id"] == "awq") awq = s["results"];
    uint64_t linears = 0;
    for (const layer& l : d.m.layers) linears += l.op == "linear";
    // Per block: q/k/v after one norm, gate/up after the other, down_proj through up_proj;
    // and the head after the final norm. o_proj is left (its input is attention's).
    CHECK(awq["groups_scaled"].get<double>() == 2 * 3 + 1);
    CHECK(awq["layers_quantized"].get<double>() == double(linears));
    CHECK(awq["layers_clipped"].get<double>() == double(linears));
    const model out = load_model(dir / "run" / "models" / "awq.safetensors");
    for (const layer& l : out.layers)
        if (l.op == "linear") CHECK(out.at(l.weight).quant.has_value());
    // After pruning (prune first, then quantize): the rescaled weights keep their masks, so
    // the quantized ones are still sparse. (Without that they lost them, and the run still
    // passed: the host does not check that a fact a stage did not end still holds.)
    test::write_text(dir / "pruned.yaml", recipe("  - { id: p, use: pruner.magnitude, params: { sparsity: 0.5 } }\n"
                                                 "  - { id: h, use: calibrator.hessian }\n"
                                                 "  - { id: c, use: calibrator.channels }\n"
                                                 "  - { id: awq, use: quantizer.awq, params: { bits: 4, group_size: 16 } }\n"));
    const auto pruned = test::shrink_cli("run " + (dir / "pruned.yaml").string() + " --out " + (dir / "pruned").string() + " --no-cache");
    INFO(pruned.output);
    CHECK(pruned.code == 0);
    const model sparse = load_model(dir / "pruned" / "models" / "awq.safetensors");
    for (const layer& l : sparse.layers)
        if (l.op == "linear") CHECK((sparse.at(l.weight).quant.has_value() && sparse.at(l.weight).sparse()));
    // Without its statistics it is refused before anything runs.
    test::write_text(dir / "bare.yaml", recipe("  - { id: awq, use: quantizer.awq }\n"));
    const auto bare = test::shrink_cli("validate " + (dir / "bare.yaml").string());
    CHECK(bare.code == 1);
    CHECK(bare.output.find("requires 'hessians'") != std::string::npos);
    CHECK(bare.output.find("requires 'channel_magnitudes'") != std::string::npos);
}
