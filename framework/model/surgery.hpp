// Edits of a model's graph and tensors that stages ask for through the host: checked here,
// so the model stays valid whoever calls.
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <string>

namespace shrink {

/// Dense float values for tensor `name` of `shape` (count = its elements); with a mask the
/// tensor is sparse (mask entries 0 or 1; values 0 where the mask is 0). Throws
/// std::invalid_argument naming the tensor for non-finite values or a bad mask.
tensor dense_tensor(const std::string& name, const std::vector<int64_t>& shape, const float* values, uint64_t count,
                    const uint8_t* mask);

/// Replaces linear or conv layer `name` (W read as out x in) by NAME.a (first: rank x in,
/// no bias; a conv keeps its window with `rank` output channels) and NAME.b (second:
/// out x rank, the old bias; a 1x1 conv for a conv). Grouped convs are refused.
void factorize_layer(model& m, const std::string& name, uint64_t rank, const float* first, const float* second);

/// Static 8-bit quantization of a linear or conv layer's input.
void set_input_quantization(model& m, const std::string& name, float scale, int32_t zero_point);
/// Dynamic 8-bit per-token quantization of a linear layer's input (input_quant::per_token).
void set_input_quantization_per_token(model& m, const std::string& name);

}  // namespace shrink
