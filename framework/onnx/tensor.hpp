// N-dimensional tensors for the reference interpreter of imported (ONNX) graphs.
//
// Values are held as double whatever the element type: exact for every integer type the
// interpreter accepts (|v| < 2^53) and more precise than float32 arithmetic, which is what
// a reference path is for. The element type is kept so results round as the graph says.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::onnx_import {

enum class element { f32, f64, f16, bf16, i8, u8, i16, u16, i32, u32, i64, u64, boolean };

bool is_integer(element e);

struct nd_tensor {
    element type = element::f32;
    std::vector<int64_t> shape;
    std::vector<double> data;

    int64_t size() const;
    /// Rounds each value as the element type stores it (float32, integer truncation, bool).
    void round_to_type();
};

/// The most elements one tensor of the reference interpreter may hold (1 GiB of doubles):
/// shapes come from files, and a hostile one must fail with a message, not exhaust memory.
constexpr int64_t max_elements = int64_t(1) << 27;

/// Throws std::runtime_error when a shape is negative or holds more than max_elements, or
/// more than what is left of the running graph's element budget (below).
void check_shape(const std::vector<int64_t>& shape);

/// The elements all live values of one graph run may hold together: while one is alive
/// on this thread, check_shape also refuses a tensor larger than what is left of it, so an
/// op refuses before allocating, and the interpreter charges each value it keeps. Without
/// it a file of a few KB could make many values of max_elements each.
class element_budget {
  public:
    explicit element_budget(int64_t total);
    ~element_budget();
    element_budget(const element_budget&) = delete;
    element_budget& operator=(const element_budget&) = delete;

    /// Takes `n` elements; throws std::runtime_error naming `what` when they are not left.
    static void charge(int64_t n, const std::string& what);
    /// Gives `n` elements back (a value no later node reads was freed).
    static void refund(int64_t n);
    /// What is left (max_elements when no budget is running).
    static int64_t left();

  private:
    int64_t total_, saved_left_;
    bool saved_active_;
};

/// Row-major strides of a shape.
std::vector<int64_t> strides_of(const std::vector<int64_t>& shape);

/// numpy broadcasting of two shapes; throws std::runtime_error when they do not broadcast.
std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

}  // namespace shrink::onnx_import
