// Seeded randomness that is the same on every platform: std::mt19937_64 is fully
// specified by the standard, but the std distributions are not, so we draw our own.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string_view>

namespace shrink {

/// A child seed that depends only on the parent seed and a name (a stage id, "data.calibration"),
/// so adding a stage does not shift the random stream of another. FNV-1a then splitmix64.
inline uint64_t derive_seed(uint64_t parent, std::string_view name) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    uint64_t z = parent ^ h;
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

class rng {
  public:
    explicit rng(uint64_t seed) : engine_(seed) {}
    /// Uniform in [0, n), n > 0; modulo bias is below 2^-40 for the sizes we use.
    uint64_t below(uint64_t n) { return engine_() % n; }
    /// Uniform in [0, 1).
    double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
    /// Standard normal by Box-Muller.
    double normal() {
        const double u1 = 1.0 - uniform();
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    template <class It>
    void shuffle(It first, It last) {
        for (auto n = last - first; n > 1; --n) std::swap(first[n - 1], first[below(static_cast<uint64_t>(n))]);
    }

  private:
    std::mt19937_64 engine_;
};

}  // namespace shrink
