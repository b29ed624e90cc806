// A --set KEY=VALUE argument (the input, up to its first newline, is one assignment) on a
// valid recipe, then the schema check of the result.
#include "input_file.hpp"
#include "recipe/recipe.hpp"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* recipe =
        "version: 1\nname: fuzz\nseed: 7\nmodel: m.safetensors\n"
        "data:\n  calibration: { dataset: fashion-mnist, split: train, samples: 64 }\n"
        "budget: { metric: accuracy, max_drop: 0.02 }\n"
        "stages:\n  - { id: calibrate, use: calibrator.minmax }\n"
        "  - { id: int8, use: quantizer.rtn, params: { bits: 8 } }\n";
    const auto& file = shrink::fuzz::input_file(reinterpret_cast<const uint8_t*>(recipe), std::char_traits<char>::length(recipe), "r.yaml");
    std::string assignment(reinterpret_cast<const char*>(data), size);
    assignment = assignment.substr(0, assignment.find('\n'));
    return shrink::fuzz::accept_or_refuse([&] { shrink::parse_recipe(file.string(), {assignment}); });
}
