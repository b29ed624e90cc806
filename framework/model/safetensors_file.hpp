// The safetensors container (https://github.com/huggingface/safetensors), and nothing
// about what its entries mean: an 8-byte little-endian header length N, N bytes of JSON
// (one record per entry: dtype, shape, data_offsets; plus "__metadata__", an object of
// strings), then the data section. shrink's own model files (model/safetensors.hpp) and,
// later, Hugging Face checkpoints are read through it.
#pragma once

#include "util/files.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shrink::safetensors {

constexpr uint64_t header_max_bytes = 100u << 20;

/// Bytes per element of a container dtype ("F32", "F16", "BF16", "I8", "U8"); 0 = not one shrink reads.
size_t dtype_size(std::string_view dtype);

/// One entry as read: its bytes lie inside the bytes the reader was given.
struct entry {
    std::string dtype;
    std::vector<int64_t> shape;
    const char* data = nullptr;
    uint64_t size = 0;
};

class reader {
  public:
    /// Parses and checks the header of `bytes`: a JSON object within header_max_bytes,
    /// every entry of a known dtype with at most 8 dimensions, its bytes matching shape
    /// and dtype and inside the data section, no overlaps and no gaps. `data_size` is the
    /// data section's true size when `bytes` holds the header only (entries then have no
    /// data). Throws input_error naming `file`.
    reader(std::string_view bytes, std::string file, std::optional<uint64_t> data_size = std::nullopt);

    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::map<std::string, entry>& entries() const { return entries_; }
    const std::string& file() const { return file_; }
    [[noreturn]] void fail(const std::string& message) const;

  private:
    std::string file_;
    std::map<std::string, std::string> metadata_;
    std::map<std::string, entry> entries_;
};

/// The header length stored in a file's first 8 bytes (fewer than 8: 0).
uint64_t header_length(std::string_view first_bytes);

/// One entry to write: its payload is produced only when the file is written.
struct out_entry {
    std::string dtype;
    std::vector<int64_t> shape;
    uint64_t size = 0;  // bytes; must equal what `write` produces
    std::function<void(const byte_sink&)> write;
};

/// The header text (offsets in name order, padded with spaces to a multiple of 8).
std::string header_text(const std::map<std::string, out_entry>& entries, const nlohmann::json& metadata);
/// Writes the whole file: length, header, then each entry's payload in name order.
void write(const std::map<std::string, out_entry>& entries, const nlohmann::json& metadata, const byte_sink& sink);
/// The size of that file, without producing any payload.
uint64_t file_size(const std::map<std::string, out_entry>& entries, const nlohmann::json& metadata);

}  // namespace shrink::safetensors
