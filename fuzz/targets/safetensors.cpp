// A model file: the safetensors container, shrink's encodings and graph, then what a
// forward pass relies on (every tensor decoded, the activation shapes), the planner's
// outline, and a re-serialization of what was read.
#include "input_file.hpp"
#include "model/outline.hpp"
#include "model/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& file = shrink::fuzz::input_file(data, size, "model.safetensors");
    shrink::fuzz::accept_or_refuse([&] { shrink::read_model_outline(file); });
    return shrink::fuzz::accept_or_refuse([&] {
        const shrink::model m = shrink::load_model(file);
        m.validate();
        m.activation_shapes();
        for (const auto& [name, t] : m.tensors) t.decode();
        shrink::serialized_sha256(m);
    });
}
