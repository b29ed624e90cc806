// Importing an ONNX model as a shrink model, to compress it.
//
// shrink's model graph runs MLP classifiers so far (linear, ReLU, softmax), so the
// importer accepts graphs that are one: Gemm, or MatMul followed by an Add of a constant
// bias, as linear layers; Relu; Softmax over the last axis; and Flatten, Reshape,
// Identity, Dropout (inference), Squeeze and Unsqueeze that only reshape [batch, features]
// data, which are no-ops on it. Shapes, including shape subgraphs (Shape -> Gather ->
// Concat -> Reshape), are found by running the graph once in the reference interpreter.
// Anything else is refused with the node named; convolutional models need the general
// runtime that comes next.
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
