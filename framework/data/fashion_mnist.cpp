#include "data/fashion_mnist.hpp"

#include "util/errors.hpp"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

namespace shrink {

namespace {

namespace fs = std::filesystem;

/// Reads a whole IDX file, gzipped or plain (zlib reads both), with an upper bound.
std::vector<uint8_t> read_idx(const fs::path& path, uint64_t max_bytes) {
    if (!fs::is_regular_file(path)) throw input_error(source_mark{path.string(), 0, 0}, "no such data file");
    std::unique_ptr<gzFile_s, decltype(&gzclose)> f(gzopen(path.c_str(), "rb"), &gzclose);
    if (!f) throw input_error(source_mark{path.string(), 0, 0}, "cannot open");
    std::vector<uint8_t> out;
    // Reserve the whole size up front (gzip's trailer holds it, mod 2^32): growing by
    // doubling would hold two buffers of the split at once.
    {
        std::ifstream raw(path, std::ios::binary);
        uint8_t magic[2] = {0, 0};
        raw.read(reinterpret_cast<char*>(magic), 2);
        uint64_t expected = fs::file_size(path);
        if (magic[0] == 0x1f && magic[1] == 0x8b && expected >= 4) {
            uint8_t trailer[4];
            raw.seekg(-4, std::ios::end);
            raw.read(reinterpret_cast<char*>(trailer), 4);
            expected = uint64_t(trailer[0]) | uint64_t(trailer[1]) << 8 | uint64_t(trailer[2]) << 16 | uint64_t(trailer[3]) << 24;
        }
        out.reserve(size_t(std::min(expected, max_bytes)));
    }
    std::vector<uint8_t> chunk(1 << 16);
    for (;;) {
        const int n = gzread(f.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
        if (n < 0) throw input_error(source_mark{path.string(), 0, 0}, "corrupt compressed data");
        if (n == 0) break;
        out.insert(out.end(), chunk.begin(), chunk.begin() + n);
        if (out.size() > max_bytes) throw input_error(source_mark{path.string(), 0, 0}, "larger than any Fashion-MNIST file");
    }
    return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
    return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | uint32_t(b[at + 3]);
}

}  // namespace

std::optional<idx_files> find_fashion_mnist(const std::string& dir, const std::string& split) {
    const std::string prefix = split == "train" ? "train" : "t10k";
    auto find = [&](const std::string& stem) -> std::optional<std::string> {
        for (const char* suffix : {".gz", ""}) {
            std::error_code ec;
            const fs::path p = fs::path(dir) / (prefix + stem + suffix);
            if (fs::is_regular_file(p, ec)) return p.string();
        }
        return std::nullopt;
    };
    auto images = find("-images-idx3-ubyte"), labels = find("-labels-idx1-ubyte");
    if (!images || !labels) return std::nullopt;
    return idx_files{*images, *labels};
}

image_set load_fashion_mnist(const std::string& dir, const std::string& split) {
    if (split != "train" && split != "test") throw input_error("unknown Fashion-MNIST split '" + split + "'");
    const auto files = find_fashion_mnist(dir, split);
    if (!files)
        throw input_error(source_mark{dir, 0, 0}, "Fashion-MNIST file not found: the " + split +
                                                      " split's images or labels are missing (install the Debian package dataset-fashion-mnist)");
    const fs::path images_path = files->images, labels_path = files->labels;
    auto images = read_idx(images_path, 64u << 20);
    const auto labels = read_idx(labels_path, 1u << 20);
    auto bad = [](const fs::path& p, const std::string& m) { return input_error(source_mark{p.string(), 0, 0}, m); };

    if (images.size() < 16 || be32(images, 0) != 0x803) throw bad(images_path, "not an IDX image file (magic 0x00000803)");
    if (labels.size() < 8 || be32(labels, 0) != 0x801) throw bad(labels_path, "not an IDX label file (magic 0x00000801)");
    image_set set;
    set.count = be32(images, 4);
    const int64_t rows = be32(images, 8), cols = be32(images, 12);
    if (rows != 28 || cols != 28) throw bad(images_path, "images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", expected 28x28");
    set.features = rows * cols;
    if (int64_t(images.size()) != 16 + set.count * set.features)
        throw bad(images_path, "holds " + std::to_string(images.size() - 16) + " pixel bytes, header promises " +
                                   std::to_string(set.count * set.features));
    if (int64_t(be32(labels, 4)) != set.count || int64_t(labels.size()) != 8 + set.count)
        throw bad(labels_path, "label count does not match the " + std::to_string(set.count) + " images");
    // Drop the header in place: a copy would hold the split twice at its peak.
    std::vector<uint8_t> pixels = std::move(images);
    pixels.erase(pixels.begin(), pixels.begin() + 16);
    set.pixels = std::move(pixels);
    set.labels.reserve(size_t(set.count));
    for (int64_t i = 0; i < set.count; ++i) {
        const uint8_t label = labels[size_t(8 + i)];
        if (label >= set.classes) throw bad(labels_path, "label " + std::to_string(label) + " at index " + std::to_string(i) + " is not a class 0..9");
        set.labels.push_back(label);
    }
    return set;
}

void scaled_pixels(const image_set& set, int64_t start, int64_t rows, float scale, std::vector<float>& out) {
    out.resize(size_t(rows * set.features));
    const uint8_t* px = set.pixels.data() + start * set.features;
    for (size_t i = 0; i < out.size(); ++i) out[i] = float(px[i]) * scale;
}

}  // namespace shrink
