// Functions that exporters spell as several ONNX nodes, found by the graph's structure and
// rewritten as the one node shrink imports. Matching looks at what each value is computed
// from, never at the order nodes are listed in or at whether a constant is an initializer
// or a Constant node (PyTorch writes each Constant right before its reader).
#pragma once

#include "onnx/onnx_file.hpp"

#include <map>
#include <set>
#include <string>

namespace shrink::onnx_import {

/// Values that do not depend on the graph's data input: initializers, Constant outputs,
/// and what nodes compute from those alone (shape arithmetic on Shape and Size included,
/// as the importer folds it).
std::set<std::string> data_independent_values(const graph& g);

/// `g` with every GELU written out in elementary ops replaced by one `Gelu` node
/// (attribute approximate = "none" or "tanh", as opset 20 defines it), named after the
/// last node of the pattern and producing its output:
/// - erf form: 0.5 · x · (1 + erf(x / √2)) with the products in any order and grouping,
///   x / √2 or x · (1/√2), the 0.5 as a factor or as a division by 2;
/// - tanh approximation: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), x³ as
///   Pow(x, 3) or as products of x, or with √(2/π) · x · (1 + 0.044715 · x²) inside.
/// A pattern is rewritten only when none of its intermediate values is read elsewhere
/// or is a graph output. `values` holds the constants' values (a probe run's values).
graph fuse_patterns(const graph& g, const std::map<std::string, nd_tensor>& values);

}  // namespace shrink::onnx_import
