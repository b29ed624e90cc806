// Importing an ONNX classifier (MLP or CNN, with joins) as a shrink model, to compress it.
//
// The file is read and its nodes sorted (onnx_file.hpp); every value's shape is learnt by
// running the graph once in the reference interpreter; functions exporters spell as
// several nodes (GELU) are rewritten as one (patterns.hpp); then the data path is walked
// node by node into layers. QDQ weights (DequantizeLinear of int8 or uint8 constants)
// keep their codes as shrink's int8 encoding, and a QuantizeLinear/DequantizeLinear pair
// before a Gemm, MatMul or Conv becomes that layer's static input quantization, so a
// model shrink exported as QDQ imports back as the same quantized model. docs/onnx.md
// lists what imports; anything else is refused with the node named.
#pragma once

#include "model/model.hpp"

#include <filesystem>

namespace shrink::onnx_import {

/// Throws input_error naming the file and the node for what cannot be imported.
model import_onnx(const std::filesystem::path& file);

}  // namespace shrink::onnx_import

namespace shrink {

/// A model file of either kind: .onnx is imported, anything else read as safetensors.
model load_any_model(const std::filesystem::path& file);

}  // namespace shrink
