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

void check_shape(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw std::runtime_error("negative dimension in a shape");
        if (d != 0 && n > max_elements / d) throw std::runtime_error("a tensor would hold more than 2^27 elements");
        n *= d;
    }
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
