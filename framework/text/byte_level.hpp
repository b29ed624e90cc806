// GPT-2's byte-level alphabet: every byte stands for one printable code point, so that a
// byte-level BPE vocabulary is made of ordinary strings (a space is "Ġ", U+0120).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace shrink::text {

/// The code point byte `b` stands for.
char32_t byte_to_char(unsigned char b);
/// The byte code point `c` stands for, if it is one of the 256.
std::optional<unsigned char> char_to_byte(char32_t c);

/// Each byte of `bytes` as its code point, in UTF-8.
std::string bytes_to_alphabet(std::string_view bytes);

}  // namespace shrink::text
