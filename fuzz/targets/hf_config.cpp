// A Hugging Face config.json: the strict reader of decoder configs, then a re-write of
// what was read, which must read back.
#include "hf/config.hpp"
#include "input_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& file = shrink::fuzz::input_file(data, size, "config.json");
    return shrink::fuzz::accept_or_refuse([&] {
        const shrink::hf::decoder_config c = shrink::hf::read_decoder_config(file);
        shrink::hf::parse_decoder_config(shrink::hf::write_decoder_config(c), "again.json");
    });
}
