// Helpers shared by the interpreter's op files (not part of the public interface).
#pragma once

#include "onnx/onnx_file.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace shrink::onnx_import::detail {

using inputs_t = std::vector<const nd_tensor*>;  // nullptr = an omitted optional input
using op_fn = std::function<std::vector<nd_tensor>(const node&, const inputs_t&, int64_t opset)>;

int64_t norm_axis(int64_t axis, size_t rank);
std::vector<int64_t> ints_of(const nd_tensor& t);
nd_tensor broadcast_map(const inputs_t& in, element out_type, const std::function<double(const double*)>& f);

/// Convolution, pooling, normalization and padding ops (interpreter_nn.cpp).
void register_nn_ops(std::map<std::string, op_fn>& table);

}  // namespace shrink::onnx_import::detail
