// A tokenizer.json: the strict reader, the tokenizer built from it (ICU patterns, merge
// table), then a sample text encoded and the ids decoded.
#include "input_file.hpp"
#include "tokenizer_samples.hpp"
#include "text/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& file = shrink::fuzz::input_file(data, size, "tokenizer.json");
    return shrink::fuzz::accept_or_refuse([&] {
        const shrink::text::tokenizer t = shrink::text::tokenizer::from_file(file);
        t.decode(t.encode(shrink::fuzz::sample_corpus()));
    });
}
