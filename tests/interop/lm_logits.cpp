// Prints a decoder's logits for one window of token ids, as JSON rows, for the llama.cpp
// parity test: shrink_lm_logits MODEL.safetensors "ID ID ..."
#include "cpu/engine.hpp"
#include "model/safetensors.hpp"

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: shrink_lm_logits MODEL \"ID ID ...\"\n");
        return 2;
    }
    const shrink::model m = shrink::load_model(argv[1]);
    std::vector<float> tokens;
    std::istringstream in(argv[2]);
    for (long id, t = 0; in >> id; ++t) tokens.insert(tokens.end(), {float(id), float(t)});
    const int64_t rows = int64_t(tokens.size() / 2);
    const shrink::engine e(m);
    const std::vector<float> logits = e.run(tokens.data(), rows);
    const int64_t width = e.output_width();
    std::printf("[");
    for (int64_t r = 0; r < rows; ++r) {
        std::printf(r ? ",\n[" : "[");
        for (int64_t v = 0; v < width; ++v) std::printf(v ? ",%.9g" : "%.9g", logits[size_t(r * width + v)]);
        std::printf("]");
    }
    std::printf("]\n");
    return 0;
}
