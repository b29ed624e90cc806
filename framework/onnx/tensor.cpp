#include "onnx/tensor.hpp"

#include <cmath>
#include <stdexcept>

namespace shrink::onnx_import {

bool is_integer(element e) {
    return e != element::f32 && e != element::f64 && e != element::f16 && e != element::bf16 && e != element::boolean;
}

int64_t nd_tensor::size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

void nd_tensor::round_to_type() {
    for (double& v : data) {
        switch (type) {
            case element::f32: v = double(float(v)); break;
            case element::f64: break;
            case element::f16:
            case element::bf16: v = double(float(v)); break;  // compared with a loose tolerance
            case element::boolean: v = v != 0 ? 1 : 0; break;
            default: v = std::trunc(v);
        }
    }
}

namespace {
thread_local bool budget_active = false;
thread_local int64_t budget_left = 0;
}  // namespace

element_budget::element_budget(int64_t total) : total_(total), saved_left_(budget_left), saved_active_(budget_active) {
    budget_active = true;
    budget_left = total;
}

element_budget::~element_budget() {
    budget_active = saved_active_;
    budget_left = saved_left_;
}

void element_budget::charge(int64_t n, const std::string& what) {
    if (!budget_active) return;
    if (n > budget_left)
        throw std::runtime_error(what + " would take the graph's values past their budget of elements (" + std::to_string(n) +
                                 " asked, " + std::to_string(budget_left) + " left)");
    budget_left -= n;
}

void element_budget::refund(int64_t n) {
    if (budget_active) budget_left += n;
}

int64_t element_budget::left() { return budget_active ? budget_left : max_elements; }

void check_shape(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw std::runtime_error("negative dimension in a shape");
        if (d != 0 && n > max_elements / d) throw std::runtime_error("a tensor would hold more than 2^27 elements");
        n *= d;
    }
    if (budget_active && n > budget_left)
        throw std::runtime_error("a tensor of " + std::to_string(n) + " elements would take the graph's values past their budget (" +
                                 std::to_string(budget_left) + " left)");
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
    std::vector<int64_t> s(shape.size(), 1);
    for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
    return s;
}

std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    const size_t n = std::max(a.size(), b.size());
    std::vector<int64_t> out(n);
    for (size_t i = 0; i < n; ++i) {
        const int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (x != y && x != 1 && y != 1)
            throw std::runtime_error("shapes do not broadcast (" + std::to_string(x) + " vs " + std::to_string(y) + ")");
        out[i] = x == 1 ? y : x;
    }
    return out;
}

}  // namespace shrink::onnx_import
