// The op table: each op's name, inputs, attributes and shape rule, from model/ops.def.
// Code that handles ops switches over op_kind (no default), so an op added to ops.def is
// named by the compiler wherever it is not handled yet.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shrink {

struct model;
struct layer;

/// What an op reads from its layer besides its activation inputs, and what kind it is.
enum op_attribute : uint32_t {
    OP_WEIGHT = 1u << 0,       // layer.weight
    OP_BIAS = 1u << 1,         // layer.bias (may be empty)
    OP_MATRIX = 1u << 2,       // its weight reads as [out, in...] rows: what compression works on
    OP_WINDOW = 1u << 3,       // layer.win: kernel, strides, pads, dilations, group
    OP_ALPHA = 1u << 4,        // layer.alpha
    OP_BETA = 1u << 5,         // layer.beta
    OP_AXIS = 1u << 6,         // layer.axis
    OP_SHAPE = 1u << 7,        // layer.shape
    OP_ELEMENTWISE = 1u << 8,  // one input, the same shape out, value by value
    OP_BINARY = 1u << 9,       // two inputs, elementwise; the second broadcasts to the first
    OP_SAME_FLOATS = 1u << 10, // the same floats in the same order (a view)
    OP_ATTENTION = 1u << 11,   // layer.attn: heads, key/value heads, head size, rotary base
};

enum class op_kind : uint8_t {
#define SHRINK_OP(id, name, inputs, attributes, shape, onnx) id,
#include "model/ops.def"
#undef SHRINK_OP
};

/// The output shape of `l` from its inputs' shapes (already checked for count); throws
/// std::runtime_error starting with `where` when they do not fit.
using shape_rule = std::vector<int64_t> (*)(const model& m, const layer& l, const std::vector<std::vector<int64_t>>& ins,
                                            const std::string& where);

struct op_info {
    op_kind kind;
    const char* name;
    int inputs;  // 0: two or more
    uint32_t attributes;
    shape_rule shape;
    const char* onnx;  // the ONNX op it exports as; "" when several nodes

    bool has(uint32_t attribute) const { return (attributes & attribute) != 0; }
};

/// Shapes' extents are bounded so that every product of them stays far from overflow.
constexpr int64_t max_extent = int64_t(1) << 20;
/// "[1, 28, 28]".
std::string dims_text(const std::vector<int64_t>& shape);

/// Every op, in ops.def order.
const std::vector<op_info>& op_table();
/// The op called `name`, or null.
const op_info* find_op(std::string_view name);
/// The op of a known kind.
const op_info& op_of(op_kind kind);
/// The kind of op `name`; throws std::runtime_error listing the known ops when it is none.
op_kind op_kind_of(std::string_view name);

}  // namespace shrink
