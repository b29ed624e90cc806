// Reading ONNX files (protobuf, through Debian's libonnx) into plain structures, with the
// checks libonnx 1.12 does not make: bounded sizes, tensors whose data matches their
// declared shape, and external data that must stay inside the model's directory.
#pragma once

#include "onnx/tensor.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shrink::onnx_import {

struct attribute {
    std::string name;
    std::optional<double> f;
    std::optional<int64_t> i;
    std::optional<std::string> s;
    std::vector<double> floats;
    std::vector<int64_t> ints;
    std::optional<nd_tensor> t;
    bool has_graph = false;  // subgraphs (If, Loop) are not supported
};

struct node {
    std::string name;
    std::string op;
    std::string domain;
    std::vector<std::string> inputs;   // "" = an omitted optional input
    std::vector<std::string> outputs;
    std::map<std::string, attribute> attributes;

    const attribute* attr(const std::string& n) const;
    int64_t int_attr(const std::string& n, int64_t fallback) const;
    double float_attr(const std::string& n, double fallback) const;
};

struct graph {
    std::vector<node> nodes;
    std::map<std::string, nd_tensor> initializers;
    std::vector<std::string> inputs;   // graph inputs that are not initializers
    std::map<std::string, std::vector<int64_t>> input_shapes;  // declared dims; -1 = symbolic (batch)
    std::vector<std::string> outputs;
    int64_t opset = 0;                 // of the default ("" / "ai.onnx") domain
    bool non_tensor_values = false;    // a graph input or output is a sequence, map or optional
};

/// Nodes come back in topological order (stable: a sorted file keeps its order), as ONNX
/// Runtime runs them whatever order the file lists. Throws input_error naming the file
/// (and node or tensor) for anything malformed, a cycle included.
graph read_model(const std::filesystem::path& file);

/// A serialized TensorProto (the test data's input_N.pb / output_N.pb).
nd_tensor read_tensor_file(const std::filesystem::path& file);

}  // namespace shrink::onnx_import
