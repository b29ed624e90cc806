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

/// What planning needs of a model, read from the header alone (no weights are loaded).
struct model_outline {
    struct layer_info {
        std::string name;
        std::string op;
        int64_t in = 0, out = 0;          // linear and conv layers: the weight's cols and rows
        int64_t input_size = 0;           // floats per sample of the layer's input activation
        std::vector<int> downstream;      // layers whose input depends on this one's output
    };
    std::vector<layer_info> layers;
    int64_t input_features = 0;
    int64_t activation_floats = 0;  // per sample, summed over the input and every layer's output
    uint64_t parameters = 0;
    uint64_t file_bytes = 0;
    uint64_t memory_bytes = 0;  // the model state in memory (payloads, scales, masks)

    int find(const std::string& layer) const;  // -1 when absent
    std::vector<std::string> names() const;
};

/// Throws input_error naming the file when the header or graph is malformed.
model_outline read_model_outline(const std::filesystem::path& path);

/// The outline of a model in memory. Throws std::runtime_error for a malformed graph.
model_outline outline_of(const model& m);

/// Bytes serialize_model(m) would produce, without building it.
uint64_t serialized_size(const model& m);

}  // namespace shrink
