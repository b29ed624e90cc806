// A decoder's input as every backend reads it: one row per token, [id, position in its
// window], the positions counting 0, 1, 2, ... within each window. The checks live here so
// that the CPU engine and the CUDA runtime refuse the same inputs with the same words.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace shrink {

/// Throws std::runtime_error for a token id that is not an integer in [0, vocab).
inline void check_token_ids(const float* tokens, int64_t rows, int64_t vocab) {
    for (int64_t r = 0; r < rows; ++r) {
        const float id = tokens[r * 2];
        if (!(id >= 0 && id < float(vocab)) || id != std::floor(id))
            throw std::runtime_error("token id " + std::to_string(id) + " (row " + std::to_string(r) + ") is not in the vocabulary of " +
                                     std::to_string(vocab));
    }
}

/// Each row's position; throws std::runtime_error when they do not count up from 0 in
/// each window.
inline std::vector<int64_t> token_positions(const float* tokens, int64_t rows) {
    std::vector<int64_t> position(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        const float p = tokens[r * 2 + 1];
        const bool next = r > 0 && p == float(position[size_t(r - 1)] + 1);
        if (p != 0 && !next)
            throw std::runtime_error("token positions must count up from 0 in each window: row " + std::to_string(r) + " has position " +
                                     std::to_string(p));
        position[size_t(r)] = int64_t(p);
    }
    return position;
}

}  // namespace shrink
