// A user's text for language models (`data: { dataset: text, path: FILE }`): plain UTF-8
// text, or JSON lines (a .jsonl file: one object a line, whose "text" string is taken).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace shrink {

/// The largest text file read (the whole text is tokenized in memory).
constexpr uint64_t max_text_file_bytes = uint64_t(1) << 31;

/// The file's text: as it is, or for .jsonl the "text" of each line joined by newlines.
/// Throws input_error naming FILE:LINE:COL where the bytes stop being UTF-8, FILE:LINE
/// for a JSON line that is not an object with a "text" string, and the file when it
/// holds no text at all.
std::string read_text_file(const std::filesystem::path& file);

}  // namespace shrink
