// shrink's native model file: the safetensors container (model/safetensors_file.hpp) with
// the tensors in shrink's encodings (model/encodings.hpp) and, in __metadata__,
// "shrink.format", "shrink.graph" (model/graph_schema.hpp) and "shrink.tensors".
//
// load_model maps the file: dense payloads are read in place (and shared by every fork of
// the model state until a stage writes them); save_model streams the payloads to disk.
#pragma once

#include "model/model.hpp"
#include "model/outline.hpp"

#include <filesystem>
#include <string>

namespace shrink {

constexpr uint64_t model_max_bytes = uint64_t(4) << 30;

/// Serializes a model (deterministically: sorted names, fixed padding).
std::string serialize_model(const model& m);

/// Parses and fully checks a model file's bytes; `file` names it in errors. The model
/// copies what it needs from `bytes`. Throws input_error ("FILE: error: ...") on anything malformed.
model parse_model(const std::string& bytes, const std::string& file);

/// Maps and parses a model file, checked like parse_model; dense payloads stay in the
/// mapping, which lives as long as any tensor reads it.
model load_model(const std::filesystem::path& path);
/// Writes atomically, streaming each payload from where it lies; returns the sha256 of the
/// bytes written.
std::string save_model(const model& m, const std::filesystem::path& path);

/// Throws input_error naming the file when the header or graph is malformed.
model_outline read_model_outline(const std::filesystem::path& path);

/// Bytes serialize_model(m) would produce, without building it.
uint64_t serialized_size(const model& m);
/// The sha256 of serialize_model(m)'s bytes, without holding them.
std::string serialized_sha256(const model& m);

}  // namespace shrink
