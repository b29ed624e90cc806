// What planning needs of a model: its layers with their widths and dependencies, sizes
// and memory. Made from a model in memory, or from a model file's header alone
// (read_model_outline in model/safetensors.hpp), so no weight is read to plan.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace shrink {

struct model_outline {
    struct layer_info {
        std::string name;
        std::string op;
        int64_t in = 0, out = 0;          // linear and conv layers: the weight's cols and rows
        int64_t input_size = 0;           // floats per sample of the layer's input activation
        std::string input;                // the value it reads (its main input)
        std::vector<int> downstream;      // layers whose input depends on this one's output
    };
    std::vector<layer_info> layers;
    int64_t input_features = 0;
    int64_t activation_floats = 0;  // per sample, summed over the input and every layer's output
    // Per sample, the most floats alive at once when layers run in order and each value is
    // freed after its last reader: what a runtime that reuses dead buffers holds.
    int64_t live_activation_floats = 0;
    uint64_t parameters = 0;
    uint64_t file_bytes = 0;
    uint64_t memory_bytes = 0;  // the model state in memory (payloads, scales, masks)
    int64_t vocab = 0;          // a language model (its input is tokens): the embedding's rows; else 0
    std::map<std::string, std::string> info;  // the model's info (hf.config, hf.source, ...)

    int find(const std::string& layer) const;  // -1 when absent
    std::vector<std::string> names() const;
};

/// The outline of a model in memory. Throws std::runtime_error for a malformed graph.
model_outline outline_of(const model& m);

/// Bytes a tensor of `elements` takes in memory with `bits` per stored value (32, 16, 8
/// or 4: codes take a byte each in memory), plus a byte per element when sparse.
uint64_t tensor_memory_bytes(uint64_t elements, int bits, bool sparse);

}  // namespace shrink
