// Reading inputs with bounds, writing outputs crash-safely, hashing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace shrink {

/// Whole file, refusing anything that is not a regular file or is larger than max_bytes.
std::string read_file_bounded(const std::filesystem::path& path, uint64_t max_bytes);

/// Writes to a temporary name in the same directory, flushes, then renames over `path`,
/// so a reader never sees a half-written file. Throws std::runtime_error naming the path.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

/// A file or directory of shrink's cache: $OVERRIDE_ENV when set ("off" = none), else
/// $XDG_CACHE_HOME/shrink/NAME, else ~/.cache/shrink/NAME. Empty path = none.
std::filesystem::path cache_path(const char* override_env, const std::string& name);

std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::filesystem::path& path);

}  // namespace shrink
