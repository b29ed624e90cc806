// The reference interpreter for imported graphs: every op it claims is implemented for
// every opset from 9 to 17, checked against ONNX's own conformance data
// (tests/unit/onnx_conformance_test.cpp). Slow and exact, not the fast path.
#pragma once

#include "onnx/onnx_file.hpp"

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace shrink::onnx_import {

/// Thrown for an op whose result is random by definition (training-mode Dropout with a
/// nonzero ratio): no fixed expected output exists to reproduce.
struct random_op_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The ops this interpreter implements completely.
const std::set<std::string>& supported_ops();

/// Runs `g` on its inputs (by name); returns the graph outputs in order. Throws
/// std::runtime_error naming the node for an unsupported op or a bad input.
std::vector<nd_tensor> run_graph(const graph& g, const std::map<std::string, nd_tensor>& inputs);

/// The same, returning every value the graph computed (by name), initializers included.
std::map<std::string, nd_tensor> run_graph_values(const graph& g, const std::map<std::string, nd_tensor>& inputs);

}  // namespace shrink::onnx_import
