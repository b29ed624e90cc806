// Text through a tokenizer (Llama 3's pattern, added tokens, ignore_merges): text that is
// not UTF-8 must be refused, and any other must decode back to itself exactly; a
// difference is a finding.
#include "input_file.hpp"
#include "tokenizer_samples.hpp"
#include "text/tokenizer.hpp"
#include "text/utf8.hpp"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const shrink::text::tokenizer t(shrink::fuzz::sample_tokenizer(shrink::fuzz::tokenizer_style::llama3));
    const std::string text(reinterpret_cast<const char*>(data), size);
    return shrink::fuzz::accept_or_refuse([&] {
        const std::vector<uint32_t> ids = t.encode(text);
        if (t.decode(ids) != text) {
            std::fprintf(stderr, "decode(encode(text)) differs from the text\n");
            std::abort();
        }
    });
}
