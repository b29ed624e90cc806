// Reading and writing the ABI's growing tables across versions (abi.h, docs/plugins.md).
//
// A table from the other side may be older (smaller) or newer (larger) than this host's
// struct. The host copies what both know into a zeroed struct of its own and never reads
// or writes beyond the other side's struct_size: a member the other side does not know
// reads as zero (NULL).
#pragma once

#include <shrink/abi.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

namespace shrink::abi {

/// A host-side copy of `table` (at least `first_size` bytes as its struct_size says),
/// zero beyond what the other side's struct_size covers. Throws std::invalid_argument
/// naming `what` for a NULL table or one smaller than its first released size.
template <class T>
T read_table(const T* table, size_t first_size, const char* what) {
    if (!table) throw std::invalid_argument(std::string(what) + " is NULL");
    const size_t size = table->struct_size;
    if (size < first_size)
        throw std::invalid_argument(std::string(what) + "'s struct_size is " + std::to_string(size) +
                                    " bytes, smaller than its first released size (" + std::to_string(first_size) +
                                    "); was it zero-initialized and its struct_size set?");
    T copy{};
    std::memcpy(static_cast<void*>(&copy), static_cast<const void*>(table), std::min(size, sizeof(T)));
    return copy;
}

/// Writes `value` to `table` (whose struct_size the other side set) member by member, only
/// the members that size covers.
template <class T>
void write_table(T* table, const T& value) {
    const size_t size = std::min<size_t>(table->struct_size, sizeof(T));
    const uint32_t keep = table->struct_size;
    std::memcpy(static_cast<void*>(table), static_cast<const void*>(&value), size);
    table->struct_size = keep;
}

}  // namespace shrink::abi
