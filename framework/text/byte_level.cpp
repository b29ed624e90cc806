#include "text/byte_level.hpp"
#include "text/utf8.hpp"

#include <array>

namespace shrink::text {

namespace {

struct alphabet {
    std::array<char32_t, 256> of_byte{};
    std::array<std::string, 256> utf8{};
    std::array<int, 0x100 + 68> byte_of{};  // -1: the code point stands for no byte
    alphabet() {
        byte_of.fill(-1);
        // Printable Latin-1 bytes stand for themselves; the other 68 take U+0100 onwards, in
        // byte order (GPT-2's bytes_to_unicode).
        auto printable = [](unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
        char32_t next = 0x100;
        for (unsigned b = 0; b < 256; ++b) {
            of_byte[b] = printable(b) ? char32_t(b) : next++;
            byte_of[of_byte[b]] = int(b);
            append_utf8(utf8[b], of_byte[b]);
        }
    }
};

const alphabet& table() {
    static const alphabet a;
    return a;
}

}  // namespace

char32_t byte_to_char(unsigned char b) { return table().of_byte[b]; }

std::optional<unsigned char> char_to_byte(char32_t c) {
    if (c >= table().byte_of.size() || table().byte_of[c] < 0) return std::nullopt;
    return static_cast<unsigned char>(table().byte_of[c]);
}

std::string bytes_to_alphabet(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) out += table().utf8[b];
    return out;
}

}  // namespace shrink::text
