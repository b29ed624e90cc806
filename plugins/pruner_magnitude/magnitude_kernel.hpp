// Unstructured magnitude pruning: the smallest |w| go first. Ties break by position so
// the result never depends on the sort's whims.
#pragma once

#include <cstdint>
#include <vector>

namespace magnitude {

/// Masks (1 = kept) pruning `sparsity` of all elements across `tensors` together (global
/// when several are given, per tensor when called with one). Already-pruned elements
/// (mask 0 in `current`) count toward the target.
std::vector<std::vector<uint8_t>> prune(const std::vector<const std::vector<float>*>& tensors,
                                        const std::vector<const std::vector<uint8_t>*>& current, double sparsity);

}  // namespace magnitude
