#include "magnitude_kernel.hpp"

#include <algorithm>
#include <cmath>

namespace magnitude {

std::vector<std::vector<uint8_t>> prune(const std::vector<const std::vector<float>*>& tensors,
                                        const std::vector<const std::vector<uint8_t>*>& current, double sparsity) {
    struct ref {
        float magnitude;
        uint32_t tensor;
        uint64_t index;
        bool operator<(const ref& o) const {
            if (magnitude != o.magnitude) return magnitude < o.magnitude;
            if (tensor != o.tensor) return tensor < o.tensor;
            return index < o.index;
        }
    };
    std::vector<ref> all;
    std::vector<std::vector<uint8_t>> masks(tensors.size());
    for (uint32_t t = 0; t < tensors.size(); ++t) {
        const std::vector<float>& w = *tensors[t];
        masks[t].assign(w.size(), 1);
        for (uint64_t i = 0; i < w.size(); ++i) {
            // Already pruned: magnitude -1 sorts before every live weight.
            const bool dead = current[t] && !(*current[t])[i];
            all.push_back({dead ? -1.0f : std::fabs(w[i]), t, i});
        }
    }
    const uint64_t k = uint64_t(std::llround(sparsity * double(all.size())));
    if (k == 0) return masks;
    std::nth_element(all.begin(), all.begin() + int64_t(k - 1), all.end());
    for (uint64_t j = 0; j < k; ++j) masks[all[j].tensor][all[j].index] = 0;
    return masks;
}

}  // namespace magnitude
