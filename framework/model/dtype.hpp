// Element types of tensor payloads: the floats a checkpoint holds (f32, f16, bf16) and the
// integer code types shrink's encodings store (i8 codes, i4 codes packed two per byte, u8
// bitmasks). A tensor keeps its floats in their stored type and widens to f32 only where a
// kernel needs floats (decode()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shrink {

enum class dtype : uint8_t { f32, f16, bf16, i8, i4, u8 };

/// "f32", "f16", "bf16", "i8", "i4", "u8".
const char* dtype_name(dtype t);
std::optional<dtype> dtype_from_name(std::string_view name);
/// f32, f16, bf16: what a dense float payload may be.
bool is_float(dtype t);

/// IEEE binary16 and bfloat16 to float, exactly (every value of either is a float).
float f16_to_f32(uint16_t h);
inline float bf16_to_f32(uint16_t b) {
    const uint32_t bits = uint32_t(b) << 16;
    float f;
    __builtin_memcpy(&f, &bits, sizeof f);
    return f;
}
/// Float to binary16 / bfloat16, rounding to nearest even (NaN stays NaN).
uint16_t f32_to_f16(float f);
uint16_t f32_to_bf16(float f);

/// Widens `count` 16-bit floats of type `t` (f16 or bf16) into `out`.
void widen(dtype t, const uint16_t* in, float* out, size_t count);

}  // namespace shrink
