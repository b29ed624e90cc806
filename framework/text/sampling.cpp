#include "text/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace shrink::text {

uint32_t sample_token(const float* logits, int64_t vocab, double temperature, rng& g) {
    const int64_t best = std::max_element(logits, logits + vocab) - logits;
    if (temperature <= 0) return uint32_t(best);
    std::vector<double> p(static_cast<size_t>(vocab));
    double total = 0;
    for (int64_t v = 0; v < vocab; ++v) total += p[size_t(v)] = std::exp((double(logits[v]) - logits[best]) / temperature);
    double u = g.uniform() * total;
    for (int64_t v = 0; v < vocab; ++v)
        if ((u -= p[size_t(v)]) < 0) return uint32_t(v);
    return uint32_t(best);  // rounding left u at the very end
}

}  // namespace shrink::text
