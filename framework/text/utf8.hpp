// UTF-8 as tokenizers need it: validity (text reaches the tokenizer valid, or is refused
// with the byte where it stops being valid) and lossy decoding of token bytes, which may
// end inside a character.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shrink::text {

/// The offset of the first byte that is not part of a valid UTF-8 sequence (overlong
/// forms, surrogates and code points past U+10FFFF are invalid), or nullopt.
std::optional<size_t> first_invalid_utf8(std::string_view bytes);

/// `bytes` with every maximal invalid subsequence replaced by U+FFFD, as Rust's
/// String::from_utf8_lossy does (so decoded text equals Hugging Face tokenizers').
std::string utf8_lossy(std::string_view bytes);

/// The code points of valid UTF-8 `s`, one at a time: returns the next one and advances `i`.
char32_t next_code_point(std::string_view s, size_t& i);

/// Appends code point `c` to `out` as UTF-8.
void append_utf8(std::string& out, char32_t c);

}  // namespace shrink::text
