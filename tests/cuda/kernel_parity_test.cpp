// Each plugin's GPU path against its CPU path on the same inputs: RTN codes, scales and
// zero points equal bit for bit; magnitude masks equal bit for bit; SVD singular values
// within 1e-9 (relative) and the factors' product within 1e-5 of the largest weight.
#include "gpu.hpp"
#include "magnitude_cuda.hpp"
#include "rtn_cuda.hpp"
#include "svd_cuda.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace shrink;

namespace {

std::vector<float> random_matrix(uint64_t rows, uint64_t cols, uint64_t seed, bool with_zero_rows = false) {
    rng g(seed);
    std::vector<float> w(rows * cols);
    for (float& x : w) x = float(g.normal() * 0.1);
    if (with_zero_rows && rows > 2) {
        std::fill(w.begin(), w.begin() + int64_t(cols), 0.0f);                   // an all-zero row
        for (uint64_t c = 0; c < cols; ++c) w[cols + c] = std::fabs(w[cols + c]);  // an all-positive row
    }
    return w;
}

void check_rtn_parity(uint64_t rows, uint64_t cols, const rtn::options& o, uint64_t seed) {
    const std::vector<float> w = random_matrix(rows, cols, seed, true);
    const rtn::result cpu = rtn::quantize(w.data(), rows, cols, o);
    const rtn::result gpu = rtn::cuda::quantize(test::gpu(), w.data(), rows, cols, o);
    CHECK(gpu.group_size == cpu.group_size);
    REQUIRE(gpu.q.size() == cpu.q.size());
    CHECK(std::equal(cpu.q.begin(), cpu.q.end(), gpu.q.begin()));
    REQUIRE(gpu.scales.size() == cpu.scales.size());
    // == on floats: an all-zero group's scale is 0 on both, its sign may differ.
    CHECK(std::equal(cpu.scales.begin(), cpu.scales.end(), gpu.scales.begin()));
    CHECK(gpu.zero_points == cpu.zero_points);
}

}  // namespace

TEST_CASE("RTN on the GPU gives the CPU's codes, scales and zero points bit for bit", "[cuda][rtn]") {
    const std::vector<std::pair<uint64_t, uint64_t>> shapes{{1, 1}, {3, 7}, {16, 64}, {33, 100}, {64, 784}, {10, 4096}, {4, 9000}};
    uint64_t seed = 1;
    for (auto [rows, cols] : shapes)
        for (int bits : {4, 8})
            for (bool symmetric : {true, false})
                for (auto gran : {rtn::granularity::per_tensor, rtn::granularity::per_channel, rtn::granularity::per_group})
                    for (uint64_t group : {32, 64, 100, 128, 512}) {
                        if (gran != rtn::granularity::per_group && group != 64) continue;
                        rtn::options o{bits, symmetric, gran, group};
                        INFO(rows << "x" << cols << " bits " << bits << (symmetric ? " sym" : " asym") << " granularity "
                                  << int(gran) << " group " << group);
                        check_rtn_parity(rows, cols, o, ++seed);
                    }
}

TEST_CASE("magnitude pruning on the GPU gives the CPU's masks, ties and earlier masks included", "[cuda][pruner]") {
    rng g(5);
    std::vector<std::vector<float>> w(3);
    std::vector<std::vector<uint8_t>> masks(3);
    const size_t sizes[3] = {1000, 4096, 37};
    for (size_t t = 0; t < 3; ++t) {
        for (size_t i = 0; i < sizes[t]; ++i) w[t].push_back(float(std::round(g.normal() * 8) / 8));  // many ties
        masks[t].assign(sizes[t], 1);
        for (size_t i = t; i < sizes[t]; i += 7) masks[t][i] = 0, w[t][i] = 0;  // pruned before
    }
    std::vector<const std::vector<float>*> wp{&w[0], &w[1], &w[2]};
    std::vector<const std::vector<uint8_t>*> mp{&masks[0], &masks[1], &masks[2]};
    for (double sparsity : {0.0, 0.1, 0.5, 0.9, 0.99}) {
        INFO("sparsity " << sparsity);
        CHECK(magnitude::cuda::prune(test::gpu(), wp, mp, sparsity) == magnitude::prune(wp, mp, sparsity));  // global
        for (size_t t = 0; t < 3; ++t)
            CHECK(magnitude::cuda::prune(test::gpu(), {wp[t]}, {mp[t]}, sparsity) == magnitude::prune({wp[t]}, {mp[t]}, sparsity));
    }
}

TEST_CASE("SVD by cuSOLVER matches the CPU's Jacobi SVD", "[cuda][svd]") {
    for (auto [rows, cols] : std::vector<std::pair<uint64_t, uint64_t>>{{64, 48}, {48, 64}, {128, 128}, {10, 300}}) {
        INFO(rows << "x" << cols);
        const std::vector<float> w = random_matrix(rows, cols, rows * 1000 + cols);
        const svd::decomposition cpu = svd::decompose(w.data(), rows, cols);
        const svd::decomposition gpu = svd::cuda::decompose(test::gpu(), w.data(), rows, cols);
        REQUIRE(gpu.k == cpu.k);
        for (uint64_t j = 0; j < cpu.k; ++j) CHECK(gpu.sigma[j] == Approx(cpu.sigma[j]).epsilon(1e-9).margin(1e-12));
        CHECK(svd::rank_for_energy(gpu.sigma, 0.9) == svd::rank_for_energy(cpu.sigma, 0.9));
        const uint64_t rank = cpu.k / 2;
        std::vector<float> f1, s1, f2, s2;
        svd::factors(cpu, rows, cols, rank, f1, s1);
        svd::factors(gpu, rows, cols, rank, f2, s2);
        float largest = 0;
        for (float x : w) largest = std::max(largest, std::fabs(x));
        for (uint64_t r = 0; r < rows; ++r)
            for (uint64_t c = 0; c < cols; ++c) {
                double a = 0, b = 0;
                for (uint64_t k = 0; k < rank; ++k) {
                    a += double(s1[r * rank + k]) * f1[k * cols + c];
                    b += double(s2[r * rank + k]) * f2[k * cols + c];
                }
                REQUIRE(std::fabs(a - b) <= 1e-5 * largest);
            }
    }
}
