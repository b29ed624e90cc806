#include "bit_allocation.hpp"

#include <algorithm>
#include <limits>

namespace mixed {

std::optional<allocation> allocate(const std::vector<std::vector<choice>>& layers, uint64_t budget) {
    constexpr uint64_t max_units = 65536;
    const uint64_t unit = std::max<uint64_t>(1, (budget + max_units - 1) / max_units);
    const size_t cap = size_t(budget / unit);
    const double inf = std::numeric_limits<double>::infinity();
    // best[c]: least loss of the layers so far within c units; from[l][c]: layer l's pick there.
    std::vector<double> best(cap + 1, 0.0), next(cap + 1);
    std::vector<std::vector<uint8_t>> from(layers.size(), std::vector<uint8_t>(cap + 1, 0));
    for (size_t l = 0; l < layers.size(); ++l) {
        if (layers[l].empty() || layers[l].size() > 255) return std::nullopt;
        std::fill(next.begin(), next.end(), inf);
        for (size_t k = 0; k < layers[l].size(); ++k) {
            const uint64_t units = (layers[l][k].bytes + unit - 1) / unit;
            if (units > cap) continue;
            for (size_t c = size_t(units); c <= cap; ++c) {
                const double v = best[c - size_t(units)] + layers[l][k].loss;
                if (v < next[c]) next[c] = v, from[l][c] = uint8_t(k);
            }
        }
        best.swap(next);
    }
    if (!(best[cap] < inf)) return std::nullopt;
    allocation out;
    out.pick.resize(layers.size());
    size_t c = cap;
    for (size_t l = layers.size(); l-- > 0;) {
        const size_t k = from[l][c];
        out.pick[l] = k;
        out.bytes += layers[l][k].bytes;
        out.loss += layers[l][k].loss;
        c -= size_t((layers[l][k].bytes + unit - 1) / unit);
    }
    return out;
}

}  // namespace mixed
