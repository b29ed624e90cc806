// The first-party plugins' numerics against simple references.
#include "magnitude_kernel.hpp"
#include "rtn_kernel.hpp"
#include "svd_kernel.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>

#include <cmath>

namespace {

std::vector<float> gaussian(uint64_t n, uint64_t seed, double sd = 0.02) {
    shrink::rng g(seed);
    std::vector<float> v(n);
    for (float& x : v) x = float(g.normal() * sd);
    return v;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += double(a[i] - b[i]) * (a[i] - b[i]);
        den += double(a[i]) * a[i];
    }
    return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("rtn matches a scalar reference for every layout", "[kernels]") {
    const uint64_t rows = 37, cols = 100;
    const std::vector<float> w = gaussian(rows * cols, 1);
    for (int bits : {8, 4})
        for (bool sym : {true, false})
            for (auto gran : {rtn::granularity::per_tensor, rtn::granularity::per_channel, rtn::granularity::per_group}) {
                const rtn::options o{bits, sym, gran, 32};
                const rtn::result r = rtn::quantize(w.data(), rows, cols, o);
                const uint64_t g = gran == rtn::granularity::per_tensor ? rows * cols : gran == rtn::granularity::per_channel ? cols : 32;
                const int qmax = (1 << (bits - 1)) - 1, qmin = sym ? -qmax : -(1 << (bits - 1));
                // Reference: the same definition, written plainly per element.
                for (uint64_t i = 0; i < rows * cols; ++i) {
                    const uint64_t row = i / cols, col = i % cols;
                    const uint64_t s = gran == rtn::granularity::per_tensor ? 0 : row * ((cols + g - 1) / g) + col / g;
                    const uint64_t begin = gran == rtn::granularity::per_tensor ? 0 : row * cols + (col / g) * g;
                    const uint64_t end = gran == rtn::granularity::per_tensor ? rows * cols : std::min(begin + g, (row + 1) * cols);
                    float lo = 0, hi = 0;
                    for (uint64_t j = begin; j < end; ++j) lo = std::min(lo, w[j]), hi = std::max(hi, w[j]);
                    const float scale = sym ? std::max(-lo, hi) / float(qmax) : (hi - lo) / float((1 << bits) - 1);
                    REQUIRE(r.scales[s] == Approx(scale).epsilon(1e-6));
                    const int zero = sym ? 0 : r.zero_points[s];
                    const long expect = std::clamp(std::lrint(w[i] / scale) + zero, long(qmin), long(qmax));
                    REQUIRE(std::abs(long(r.q[i]) - expect) <= 1);  // x*inv vs x/scale may differ at exact halves
                    REQUIRE(r.q[i] >= qmin);
                    REQUIRE(r.q[i] <= qmax);
                }
                const double err = relative_error(w, rtn::dequantize(r, rows, cols));
                CHECK(err < (bits == 8 ? 0.02 : 0.25));
            }
}

TEST_CASE("rtn keeps zeros exactly zero, even asymmetric", "[kernels]") {
    std::vector<float> w = gaussian(64 * 64, 2);
    for (size_t i = 0; i < w.size(); i += 2) w[i] = 0;
    for (auto o : {rtn::options{4, false, rtn::granularity::per_group, 16}, rtn::options{8, false, rtn::granularity::per_channel, 0}}) {
        const auto back = rtn::dequantize(rtn::quantize(w.data(), 64, 64, o), 64, 64);
        for (size_t i = 0; i < w.size(); i += 2) REQUIRE(back[i] == 0.0f);
    }
}

TEST_CASE("rtn gives an all-zero group the scale +0, whatever the signs of its zeros", "[kernels]") {
    // The GPU path must write the same bytes; the vectorized min and max alone leave the sign to chance.
    for (uint64_t cols : {7, 64, 4096})
        for (bool symmetric : {true, false}) {
            std::vector<float> w(2 * cols, 0.0f);
            std::fill(w.begin() + int64_t(cols), w.end(), -0.0f);
            const rtn::result r = rtn::quantize(w.data(), 2, cols, {8, symmetric, rtn::granularity::per_channel, 64});
            for (float s : r.scales) CHECK_FALSE(std::signbit(s));
        }
}

TEST_CASE("rtn error shrinks with more bits and smaller groups", "[kernels]") {
    const std::vector<float> w = gaussian(128 * 256, 3);
    auto err = [&](rtn::options o) { return relative_error(w, rtn::dequantize(rtn::quantize(w.data(), 128, 256, o), 128, 256)); };
    CHECK(err({8, true, rtn::granularity::per_channel, 0}) < err({4, true, rtn::granularity::per_group, 32}));
    CHECK(err({4, true, rtn::granularity::per_group, 32}) < err({4, true, rtn::granularity::per_group, 128}));
    CHECK(err({4, true, rtn::granularity::per_group, 128}) < err({4, true, rtn::granularity::per_tensor, 0}));
}

TEST_CASE("magnitude pruning removes exactly the smallest, ties by position", "[kernels]") {
    const std::vector<float> w{0.5f, -0.1f, 0.3f, -0.1f, 0.0f, 2.0f, -0.7f, 0.2f};
    const auto m = magnitude::prune({&w}, {nullptr}, 0.5)[0];
    CHECK(m == std::vector<uint8_t>{1, 0, 1, 0, 0, 1, 1, 0});
    // An already-pruned weight counts toward the target, however large it was.
    const std::vector<uint8_t> already{1, 1, 1, 1, 1, 0, 1, 1};
    CHECK(magnitude::prune({&w}, {&already}, 0.25)[0] == std::vector<uint8_t>{1, 1, 1, 1, 0, 0, 1, 1});
    const std::vector<float> small{0.01f, 0.02f}, large{1.0f, 2.0f};
    const auto global = magnitude::prune({&small, &large}, {nullptr, nullptr}, 0.5);
    CHECK(global[0] == std::vector<uint8_t>{0, 0});
    CHECK(global[1] == std::vector<uint8_t>{1, 1});
}

TEST_CASE("svd reconstructs at full rank and truncates by energy", "[kernels]") {
    for (auto [rows, cols] : {std::pair<uint64_t, uint64_t>{20, 50}, {50, 20}, {16, 16}}) {
        const std::vector<float> w = gaussian(rows * cols, rows * 100 + cols, 1.0);
        const svd::decomposition d = svd::decompose(w.data(), rows, cols);
        CHECK(std::is_sorted(d.sigma.rbegin(), d.sigma.rend()));
        std::vector<float> first, second;
        svd::factors(d, rows, cols, d.k, first, second);
        std::vector<float> back(rows * cols, 0.0f);
        for (uint64_t i = 0; i < rows; ++i)
            for (uint64_t j = 0; j < cols; ++j) {
                double s = 0;
                for (uint64_t r = 0; r < d.k; ++r) s += double(second[i * d.k + r]) * first[r * cols + j];
                back[i * cols + j] = float(s);
            }
        CHECK(relative_error(w, back) < 1e-5);
    }
    // A rank-2 matrix plus tiny noise: 99.9% of the energy needs rank 2.
    const uint64_t rows = 30, cols = 40;
    std::vector<float> w(rows * cols);
    const auto noise = gaussian(rows * cols, 9, 1e-4);
    for (uint64_t i = 0; i < rows; ++i)
        for (uint64_t j = 0; j < cols; ++j) w[i * cols + j] = float(std::sin(double(i)) * std::cos(double(j)) + 0.5 * double(i % 3) * double(j % 5)) + noise[i * cols + j];
    const svd::decomposition d = svd::decompose(w.data(), rows, cols);
    CHECK(svd::rank_for_energy(d.sigma, 0.999) == 2);
}
