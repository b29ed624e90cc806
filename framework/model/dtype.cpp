#include "model/dtype.hpp"

#include <cmath>
#include <cstring>

namespace shrink {

const char* dtype_name(dtype t) {
    switch (t) {
        case dtype::f32: return "f32";
        case dtype::f16: return "f16";
        case dtype::bf16: return "bf16";
        case dtype::i8: return "i8";
        case dtype::i4: return "i4";
        case dtype::u8: return "u8";
    }
    return "?";
}

std::optional<dtype> dtype_from_name(std::string_view name) {
    for (dtype t : {dtype::f32, dtype::f16, dtype::bf16, dtype::i8, dtype::i4, dtype::u8})
        if (name == dtype_name(t)) return t;
    return std::nullopt;
}

bool is_float(dtype t) { return t == dtype::f32 || t == dtype::f16 || t == dtype::bf16; }

float f16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exponent = (h >> 10) & 0x1f;
    const uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);  // infinity or NaN
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // normal: rebias 15 -> 127
    } else {
        // Zero or subnormal: mantissa * 2^-24, exact in float.
        const float v = std::ldexp(float(mantissa), -24);
        std::memcpy(&bits, &v, sizeof bits);
        bits |= sign;
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if (std::isnan(f)) return uint16_t((bits >> 16) | 0x40);  // keep it a quiet NaN
    bits += 0x7fff + ((bits >> 16) & 1);                      // round to nearest even
    return uint16_t(bits >> 16);
}

uint16_t f32_to_f16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    const uint16_t sign = uint16_t((bits >> 16) & 0x8000);
    const float a = std::fabs(f);
    if (std::isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00;  // rounds to infinity
    if (a < 6.103515625e-05f) {
        // Subnormal (or zero): a multiple of 2^-24, rounded to nearest even by rint.
        return sign | uint16_t(std::nearbyint(std::ldexp(a, 24)));
    }
    uint32_t abits;
    std::memcpy(&abits, &a, sizeof abits);
    // Rebias and round the 13 dropped mantissa bits to nearest even; a carry moves into the exponent.
    uint32_t h = ((abits >> 23) - 112) << 10 | ((abits >> 13) & 0x3ff);
    const uint32_t rest = abits & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
    return sign | uint16_t(h);
}

void widen(dtype t, const uint16_t* in, float* out, size_t count) {
    if (t == dtype::bf16)
        for (size_t i = 0; i < count; ++i) out[i] = bf16_to_f32(in[i]);
    else
        for (size_t i = 0; i < count; ++i) out[i] = f16_to_f32(in[i]);
}

}  // namespace shrink
