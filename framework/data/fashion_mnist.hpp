// Fashion-MNIST from the IDX files of Debian's dataset-fashion-mnist package.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shrink {

constexpr const char* fashion_mnist_default_dir = "/usr/share/datasets/fashion-mnist";

struct image_set {
    int64_t count = 0;
    int64_t features = 0;         // rows * cols of one image
    std::vector<uint8_t> pixels;  // count * features
    std::vector<int32_t> labels;  // count, in [0, classes)
    int32_t classes = 10;
};

struct idx_files {
    std::string images, labels;
};

/// Where a split's IDX files are in `dir` (gzipped or not); nullopt when either is
/// missing. The one place that knows the files' names.
std::optional<idx_files> find_fashion_mnist(const std::string& dir, const std::string& split);

/// Loads "train" or "test" from `dir` (the IDX files, gzipped or not). Checks magic
/// numbers, dimensions, counts and label range; throws input_error naming the file.
image_set load_fashion_mnist(const std::string& dir, const std::string& split);

/// Images [start, start + rows) of `set` as floats, pixel * scale, into `out` (resized).
void scaled_pixels(const image_set& set, int64_t start, int64_t rows, float scale, std::vector<float>& out);

}  // namespace shrink
