#include "smooth.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace smooth {

std::vector<float> scales(const std::vector<float>& input_absmax, const std::vector<float>& weight_absmax, double alpha) {
    if (input_absmax.size() != weight_absmax.size()) throw std::invalid_argument("input and weight channel counts differ");
    std::vector<float> s(input_absmax.size());
    for (size_t j = 0; j < s.size(); ++j) {
        const double x = std::max(double(input_absmax[j]), 1e-5), w = std::max(double(weight_absmax[j]), 1e-5);
        s[j] = float(std::max(std::pow(x, alpha) / std::pow(w, 1 - alpha), 1e-5));
    }
    return s;
}

void column_absmax(const float* w, uint64_t rows, uint64_t cols, std::vector<float>& into) {
    into.resize(cols, 0.0f);
    for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t j = 0; j < cols; ++j) into[j] = std::max(into[j], std::fabs(w[r * cols + j]));
}

}  // namespace smooth
