// Tensors carry f32, f16 and bf16: conversions are exact where they must be, 16-bit
// models load without widening (their payload read in place from the mapped file), run
// like their widened twin, and write back byte for byte.
#include "cpu/engine.hpp"
#include "model/dtype.hpp"
#include "model/safetensors.hpp"
#include "support.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {

/// The tiny model with fc1 in bf16 and fc2 in f16 (values rounded to those types).
model half_model() {
    model m = test::tiny_model(4, 32);
    auto narrow = [&](const std::string& name, dtype t) {
        tensor& x = m.at(name);
        std::vector<uint16_t> bits;
        for (float v : x.values) bits.push_back(t == dtype::bf16 ? f32_to_bf16(v) : f32_to_f16(v));
        x.type = t;
        x.half = std::move(bits);
        x.values.clear();
    };
    narrow("fc1.weight", dtype::bf16);
    narrow("fc2.weight", dtype::f16);
    return m;
}

/// The same model with every tensor widened to f32.
model widened(const model& m) {
    model w = m;
    for (auto& [name, t] : w.tensors)
        if (t.type != dtype::f32) {
            t.values = t.decode();
            t.half.clear();
            t.type = dtype::f32;
        }
    return w;
}

}  // namespace

TEST_CASE("f16 and bf16 widen exactly and narrow back to the same bits", "[dtype]") {
    for (uint32_t h = 0; h < 65536; ++h) {
        const uint16_t bits = uint16_t(h);
        const float f = f16_to_f32(bits), b = bf16_to_f32(bits);
        if (!std::isnan(f)) REQUIRE(f32_to_f16(f) == bits);
        if (!std::isnan(b)) REQUIRE(f32_to_bf16(b) == bits);
    }
    CHECK(f16_to_f32(0x3c00) == 1.0f);
    CHECK(f16_to_f32(0x7bff) == 65504.0f);
    CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // the smallest subnormal
    CHECK(bf16_to_f32(0x3f80) == 1.0f);
    // Rounding to nearest, ties to even.
    CHECK(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);                       // tie: stays even
    CHECK(f32_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3f82);                       // tie: up to even
    CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);                       // tie: stays even
    CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3c01);  // above the tie
    CHECK(f32_to_f16(70000.0f) == 0x7c00);                                           // overflow: infinity
    CHECK(dtype_from_name("bf16") == dtype::bf16);
    CHECK(!dtype_from_name("f64"));
}

TEST_CASE("a bf16/f16 model loads without widening, runs like its f32 twin and writes back the same bytes", "[dtype][safetensors]") {
    test::temp_dir dir;
    const model m = half_model();
    save_model(m, dir / "half.safetensors");
    const model back = load_model(dir / "half.safetensors");
    const tensor& w1 = back.at("fc1.weight");
    CHECK(w1.type == dtype::bf16);
    CHECK(w1.values.empty());
    CHECK(w1.half.size() == w1.element_count());
    CHECK(w1.half.is_view());  // read in place from the mapped file: never widened on load
    CHECK(back.at("fc2.weight").type == dtype::f16);
    CHECK(w1.encoding_summary() == "bf16");
    CHECK(w1.stored_bytes() == w1.element_count() * 2);
    CHECK(w1.decode() == m.at("fc1.weight").decode());
    CHECK(serialize_model(back) == test::read_text(dir / "half.safetensors"));

    // The engine widens where its kernels need floats: the same outputs as the f32 twin.
    const model twin = widened(back);
    rng g(2);
    std::vector<float> x(size_t(6 * m.input_features));
    for (float& v : x) v = float(g.uniform());
    CHECK(engine(back).run(x.data(), 6) == engine(twin).run(x.data(), 6));
    CHECK(serialized_size(twin) > serialized_size(back));
}

TEST_CASE("a 16-bit tensor holding a NaN or infinity is refused naming it", "[dtype][safetensors]") {
    model m = half_model();
    tensor& w = m.at("fc1.weight");
    w.half.write()[5] = 0x7fc0;  // a bf16 NaN
    const std::string bytes = serialize_model(m);
    CHECK_THROWS_WITH(parse_model(bytes, "nan.safetensors"),
                      Contains("nan.safetensors: error: tensor 'fc1.weight': value 5 is not finite"));
    model f = half_model();
    f.at("fc2.weight").half.write()[0] = 0x7c00;  // f16 infinity
    CHECK_THROWS_WITH(parse_model(serialize_model(f), "inf.safetensors"), Contains("tensor 'fc2.weight': value 0 is not finite"));
}

TEST_CASE("a sparse tensor must hold f32 values", "[dtype]") {
    model m = half_model();
    tensor& w = m.at("fc1.weight");
    w.mask.assign(w.element_count(), 1);
    CHECK_THROWS_WITH(m.validate(), Contains("tensor 'fc1.weight': a sparse tensor holds f32 values"));
}
