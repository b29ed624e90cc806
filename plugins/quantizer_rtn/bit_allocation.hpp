// Mixed precision's assignment: one width per layer so that the layers' stored bytes stay
// within a budget and the summed predicted loss (each layer's measured sensitivity at that
// width) is least. This is the multiple-choice knapsack; it is solved exactly over the
// bytes counted in units of `unit` bytes, each choice's bytes rounded up, so an assignment
// it returns never exceeds the budget, and it is optimal up to that rounding (the units
// are at most 1/65536 of the budget: about layers/65536 of it can go unused).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace mixed {

struct choice {
    int bits = 0;
    uint64_t bytes = 0;  // what the layer stores at this width
    double loss = 0;     // its predicted loss (measured sensitivity)
};

struct allocation {
    std::vector<size_t> pick;  // per layer, the index of its choice
    uint64_t bytes = 0;
    double loss = 0;
};

/// The assignment of least summed loss whose bytes fit `budget`; nothing when even the
/// smallest choices do not. Ties go to the earlier choice of the earlier layer.
std::optional<allocation> allocate(const std::vector<std::vector<choice>>& layers, uint64_t budget);

}  // namespace mixed
