// A recipe file: the YAML reader, the schema and every check parse_recipe makes.
#include "input_file.hpp"
#include "recipe/recipe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& file = shrink::fuzz::input_file(data, size, "recipe.yaml");
    return shrink::fuzz::accept_or_refuse([&] { shrink::parse_recipe(file.string(), {}); });
}
