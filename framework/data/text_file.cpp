#include "data/text_file.hpp"
#include "text/utf8.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <nlohmann/json.hpp>

namespace shrink {

namespace {

/// FILE:LINE:COL of byte `offset` (columns count bytes).
source_mark mark_of(const std::filesystem::path& file, const std::string& text, size_t offset) {
    source_mark m{file.string(), 1, 1};
    for (size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++m.line;
            m.column = 1;
        } else {
            ++m.column;
        }
    }
    return m;
}

std::string from_json_lines(const std::filesystem::path& file, const std::string& raw) {
    std::string text;
    int line = 0;
    for (size_t at = 0; at < raw.size();) {
        size_t end = raw.find('\n', at);
        if (end == std::string::npos) end = raw.size();
        ++line;
        const std::string_view row(raw.data() + at, end - at);
        at = end + 1;
        if (row.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank lines
        const source_mark where{file.string(), line, 0};
        nlohmann::json object;
        try {
            object = nlohmann::json::parse(row);
        } catch (const nlohmann::json::exception& e) {
            throw input_error(where, std::string("not valid JSON: ") + e.what());
        }
        if (!object.is_object()) throw input_error(where, "each line must be a JSON object with a \"text\" string");
        auto it = object.find("text");
        if (it == object.end() || !it->is_string()) throw input_error(where, "no \"text\" string in this object");
        if (!text.empty()) text += '\n';
        text += it->get<std::string>();
    }
    return text;
}

}  // namespace

std::string read_text_file(const std::filesystem::path& file) {
    const std::string raw = read_input_file(file, max_text_file_bytes);
    if (auto bad = text::first_invalid_utf8(raw)) throw input_error(mark_of(file, raw, *bad), "the text is not valid UTF-8 here");
    std::string text = file.extension() == ".jsonl" ? from_json_lines(file, raw) : raw;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw input_error(file.string() + ": holds no text");
    return text;
}

}  // namespace shrink
