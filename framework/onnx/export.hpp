// Writing a shrink model as ONNX (opset 13) that ONNX Runtime and other engines run:
// float weights as initializers; int8 weights with one scale per tensor or per output
// channel as DequantizeLinear of int8 initializers (QDQ); static int8 inputs as
// QuantizeLinear/DequantizeLinear pairs (uint8); factorized layers as their two Gemms
// or Convs; convs, pooling and activations as the ONNX ops of the same name; batchnorm
// as BatchNormalization with mean 0, variance 1 and epsilon 0 (it holds the folded scale
// and shift); gelu and gelu_tanh as PyTorch writes their formulas (opset 13 has no Gelu);
// pruned weights as zeros. Per-group and int4 weights are written dequantized to float:
// ONNX has block-wise and 4-bit quantization only from opset 21.
#pragma once

#include "model/model.hpp"

#include <filesystem>
#include <string>

namespace shrink::onnx_import {

/// The serialized ModelProto. The graph's input takes pixel * input_scale, as shrink does.
std::string export_onnx(const model& m);

/// Written atomically. Throws std::runtime_error naming the path.
void save_onnx(const model& m, const std::filesystem::path& file);

}  // namespace shrink::onnx_import
