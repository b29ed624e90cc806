// shrink's native model file: safetensors (https://github.com/huggingface/safetensors)
// with the graph and tensor encodings in __metadata__.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON header (padded with
// spaces to 8 bytes), then the data. Each logical tensor W is stored as entries
//   W         its payload: F32 dense, F32 kept values (sparse), I8 (int8), U8 (packed int4)
//   W.scales  F32, W.zeros I8 (asymmetric), W.mask U8 (bit i = element i kept, LSB first)
// and __metadata__ holds "shrink.format", "shrink.graph" and "shrink.tensors" (JSON text).
#pragma once

#include "model/model.hpp"

#include <filesystem>
#include <string>

namespace shrink {

constexpr uint64_t model_max_bytes = uint64_t(4) << 30;

/// Serializes a model (deterministically: sorted names, fixed padding).
std::string serialize_model(const model& m);

/// Parses and fully checks a model file's bytes; `file` names it in errors.
/// Throws input_error ("FILE: error: ...") on anything malformed.
model parse_model(const std::string& bytes, const std::string& file);

model load_model(const std::filesystem::path& path);
void save_model(const model& m, const std::filesystem::path& path);

/// Bytes serialize_model(m) would produce, without building it.
uint64_t serialized_size(const model& m);

}  // namespace shrink
