// Runs a model through shrink (a .safetensors model, or an .onnx file as it imports) on
// seeded N(0, 1) inputs and writes inputs and outputs, so another runtime can be checked
// against shrink on the same numbers (tests/interop/torch_exports.sh):
//   DIR/input.f32, DIR/output.f32   little-endian float32, row-major
//   DIR/meta.json                   {"rows": R, "input_shape": [...], "output_width": W}
//   shrink_forward MODEL ROWS SEED DIR
#include "cpu/threading.hpp"
#include "onnx/import.hpp"
#include "cpu/engine.hpp"
#include "util/files.hpp"
#include "util/random.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace {

std::string bytes_of(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)); }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: shrink_forward MODEL ROWS SEED DIR\n");
        return 2;
    }
    try {
        shrink::cpu::set_thread_count(2);
        const shrink::model m = shrink::load_any_model(argv[1]);
        const int64_t rows = std::atoll(argv[2]);
        shrink::rng gen(std::strtoull(argv[3], nullptr, 10));
        std::vector<float> x(size_t(rows * m.input_features));
        for (float& v : x) v = float(gen.normal());
        const shrink::engine e(m);
        const std::vector<float> y = e.run(x.data(), rows);
        const std::string dir = argv[4];
        shrink::write_file_atomic(dir + "/input.f32", bytes_of(x));
        shrink::write_file_atomic(dir + "/output.f32", bytes_of(y));
        std::string shape;
        for (int64_t d : m.input_shape.empty() ? std::vector<int64_t>{m.input_features} : m.input_shape)
            shape.append(shape.empty() ? "" : ", ").append(std::to_string(d));
        shrink::write_file_atomic(dir + "/meta.json", "{\"rows\": " + std::to_string(rows) + ", \"input_shape\": [" + shape +
                                                          "], \"output_width\": " + std::to_string(e.output_width()) + "}\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "shrink_forward: %s\n", e.what());
        return 1;
    }
    return 0;
}
