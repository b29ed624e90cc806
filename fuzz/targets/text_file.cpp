// A user's text file for language-model data: plain text, or JSON lines when the first
// byte is odd (the file is then named .jsonl). UTF-8 is checked with the place named.
#include "data/text_file.hpp"
#include "input_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const bool json_lines = size > 0 && (data[0] & 1);
    const auto& file = shrink::fuzz::input_file(data, size, json_lines ? "text.jsonl" : "text.txt");
    return shrink::fuzz::accept_or_refuse([&] { shrink::read_text_file(file); });
}
