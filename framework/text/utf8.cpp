#include "text/utf8.hpp"

namespace shrink::text {

namespace {

/// The length of the valid sequence starting at bytes[i], or, when it is invalid, 0 and
/// in `bad` the length of its maximal subpart (the bytes one U+FFFD replaces: Unicode's
/// "best practice", which Rust follows).
size_t valid_length(std::string_view bytes, size_t i, size_t& bad) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
    const unsigned char c = b(i);
    bad = 1;
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;  // the valid range of the second byte
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;       // no overlong forms
        if (c == 0xED) hi = 0x9F;       // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;       // nothing past U+10FFFF
    } else
        return 0;
    for (size_t k = 1; k < need; ++k) {
        if (i + k >= bytes.size()) return 0;
        const unsigned char x = b(i + k);
        if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) return 0;
        bad = k + 1;
    }
    return need;
}

}  // namespace

std::optional<size_t> first_invalid_utf8(std::string_view bytes) {
    for (size_t i = 0, bad = 0; i < bytes.size();) {
        const size_t n = valid_length(bytes, i, bad);
        if (n == 0) return i;
        i += n;
    }
    return std::nullopt;
}

std::string utf8_lossy(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (size_t i = 0, bad = 0; i < bytes.size();) {
        const size_t n = valid_length(bytes, i, bad);
        if (n) {
            out.append(bytes.substr(i, n));
            i += n;
        } else {
            out += "\xEF\xBF\xBD";
            i += bad;
        }
    }
    return out;
}

char32_t next_code_point(std::string_view s, size_t& i) {
    const auto b = [&](size_t k) { return char32_t(static_cast<unsigned char>(s[k])); };
    const char32_t c = b(i);
    if (c < 0x80) {
        i += 1;
        return c;
    }
    if (c < 0xE0) {
        i += 2;
        return ((c & 0x1F) << 6) | (b(i - 1) & 0x3F);
    }
    if (c < 0xF0) {
        i += 3;
        return ((c & 0x0F) << 12) | ((b(i - 2) & 0x3F) << 6) | (b(i - 1) & 0x3F);
    }
    i += 4;
    return ((c & 0x07) << 18) | ((b(i - 3) & 0x3F) << 12) | ((b(i - 2) & 0x3F) << 6) | (b(i - 1) & 0x3F);
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += char(c);
    } else if (c < 0x800) {
        out += char(0xC0 | (c >> 6));
        out += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += char(0xE0 | (c >> 12));
        out += char(0x80 | ((c >> 6) & 0x3F));
        out += char(0x80 | (c & 0x3F));
    } else {
        out += char(0xF0 | (c >> 18));
        out += char(0x80 | ((c >> 12) & 0x3F));
        out += char(0x80 | ((c >> 6) & 0x3F));
        out += char(0x80 | (c & 0x3F));
    }
}

}  // namespace shrink::text
