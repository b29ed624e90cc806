// Reading inputs with bounds, writing outputs crash-safely, hashing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shrink {

/// Whole file, refusing anything that is not a regular file or is larger than max_bytes.
std::string read_file_bounded(const std::filesystem::path& path, uint64_t max_bytes);
/// The same for a file of outside input (a recipe, a config): refusals are input_error (exit 1).
std::string read_input_file(const std::filesystem::path& path, uint64_t max_bytes);

/// Writes to a temporary name in the same directory, flushes, then renames over `path`,
/// so a reader never sees a half-written file. Throws std::runtime_error naming the path.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

/// Receives a file's bytes piece by piece.
using byte_sink = std::function<void(const void* data, size_t size)>;
/// As write_file_atomic, with the bytes produced by `produce` in pieces, so a large file
/// never has to exist in memory whole. What `produce` throws removes the temporary file.
void write_file_atomic_streamed(const std::filesystem::path& path, const std::function<void(const byte_sink&)>& produce);

/// A read-only, private memory map of a whole regular file, unmapped when the last
/// reference goes. Pages are read from the file when first touched and shared with the
/// page cache. Refuses what read_file_bounded refuses, with the same messages.
struct mapped_file {
    const char* data = nullptr;
    uint64_t size = 0;
    ~mapped_file();
};
std::shared_ptr<const mapped_file> map_file(const std::filesystem::path& path, uint64_t max_bytes);
/// The same for a file of outside input (a model, a shard): refusals are input_error (exit 1).
std::shared_ptr<const mapped_file> map_input_file(const std::filesystem::path& path, uint64_t max_bytes);
/// Drops the whole pages of [data, data + size), part of a read-only file mapping, from
/// this process's memory: what was copied out need not stay resident (read again, the
/// pages come back from the file).
void release_mapped_pages(const void* data, uint64_t size);

/// A file or directory of shrink's cache: $OVERRIDE_ENV when set ("off" = none), else
/// $XDG_CACHE_HOME/shrink/NAME, else ~/.cache/shrink/NAME. Empty path = none.
std::filesystem::path cache_path(const char* override_env, const std::string& name);

std::string sha256_hex(std::string_view bytes);

/// sha256 of bytes given piece by piece.
class sha256_stream {
  public:
    sha256_stream();
    ~sha256_stream();
    sha256_stream(const sha256_stream&) = delete;
    void update(const void* data, size_t size);
    std::string hex();  // once, at the end

  private:
    void* ctx_;
};
std::string sha256_file(const std::filesystem::path& path);

}  // namespace shrink
