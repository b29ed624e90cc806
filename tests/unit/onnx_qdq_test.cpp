// Quantized ONNX (QDQ) in: shrink's own int8 export imports back as the same quantized
// model (codes, scales, zero points and input quantization equal; outputs bit-identical),
// and QDQ as other tools write it (uint8 codes, [in, out] weights, int8 activations)
// keeps its codes and computes what the ONNX graph computes.
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"
#include "unit/onnx_builder.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace shrink;
using test::builder;
using test::import_and_compare;
using test::random_values;
using Catch::Matchers::Contains;

namespace {

/// Quantizes a weight to int8 as RTN would: per output channel (symmetric) or per tensor
/// (asymmetric, with a zero point).
void quantize(model& m, const std::string& name, bool per_channel) {
    tensor& w = m.at(name);
    const uint64_t rows = w.rows(), cols = w.cols();
    std::vector<int8_t> q(w.values.size()), zeros;
    std::vector<float> scales;
    if (per_channel) {
        for (uint64_t r = 0; r < rows; ++r) {
            float top = 0;
            for (uint64_t c = 0; c < cols; ++c) top = std::max(top, std::abs(w.values[r * cols + c]));
            scales.push_back(top / 127);
            for (uint64_t c = 0; c < cols; ++c) q[r * cols + c] = int8_t(std::lround(w.values[r * cols + c] / scales.back()));
        }
    } else {
        const auto [lo, hi] = std::minmax_element(w.values.begin(), w.values.end());
        scales.push_back((*hi - *lo) / 255);
        zeros.push_back(int8_t(std::lround(-128 - *lo / scales[0])));
        for (size_t i = 0; i < q.size(); ++i) q[i] = int8_t(std::clamp<long>(std::lround(w.values[i] / scales[0]) + zeros[0], -128, 127));
    }
    w = make_quantized(w, quant_spec{8, per_channel, per_channel ? cols : 0}, q, scales, zeros);
}

void same_quantization(const model& a, const model& b) {
    REQUIRE(a.layers.size() == b.layers.size());
    for (size_t i = 0; i < a.layers.size(); ++i) {
        const layer& x = a.layers[i];
        const layer& y = b.layers[i];
        INFO("layer " << x.name);
        CHECK(x.op == y.op);
        CHECK(x.input_quantization.has_value() == y.input_quantization.has_value());
        if (x.input_quantization && y.input_quantization) {
            CHECK(x.input_quantization->scale == y.input_quantization->scale);
            CHECK(x.input_quantization->zero_point == y.input_quantization->zero_point);
        }
        if (!has_matrix(x.op)) continue;
        const tensor& v = a.at(x.weight);
        const tensor& w = b.at(y.weight);
        REQUIRE(v.quant.has_value() == w.quant.has_value());
        if (!v.quant) continue;
        CHECK(v.quant->symmetric == w.quant->symmetric);
        CHECK(v.quant->group_size == w.quant->group_size);
        CHECK(v.q == w.q);
        CHECK(v.scales == w.scales);
        CHECK(v.zero_points == w.zero_points);
    }
}

}  // namespace

TEST_CASE("shrink's int8 QDQ export imports back as the same quantized model", "[onnx][import][qdq]") {
    test::temp_dir dir;
    model mlp = test::tiny_model(5, 30);
    quantize(mlp, mlp.layers[0].weight, true);
    quantize(mlp, mlp.layers[2].weight, false);
    mlp.layers[2].input_quantization = input_quant{0.02f, 3};
    mlp.layers[4].input_quantization = input_quant{0.05f, 128};
    onnx_import::save_onnx(mlp, dir / "mlp.onnx");
    const model mlp_back = onnx_import::import_onnx(dir / "mlp.onnx");
    same_quantization(mlp, mlp_back);
    // The engine takes what the graph takes (pixels * input_scale, scaled by the data loader).
    const std::vector<float> x = random_values(5 * 30, 6, 1.0f);
    CHECK(engine(mlp_back).run(x.data(), 5) == engine(mlp).run(x.data(), 5));

    model cnn = test::tiny_cnn(8, 8);
    quantize(cnn, "conv1.weight", true);
    quantize(cnn, "conv2.weight", true);
    quantize(cnn, "fc1.weight", true);
    cnn.find_layer("conv2")->input_quantization = input_quant{0.03f, 0};
    cnn.find_layer("fc1")->input_quantization = input_quant{0.01f, 40};
    onnx_import::save_onnx(cnn, dir / "cnn.onnx");
    const model cnn_back = onnx_import::import_onnx(dir / "cnn.onnx");
    // conv1's batchnorm stays a layer: folding it would change the codes.
    same_quantization(cnn, cnn_back);
    const std::vector<float> images = random_values(3 * 64, 7, 1.0f);
    const std::vector<float> want = engine(cnn).run(images.data(), 3), got = engine(cnn_back).run(images.data(), 3);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-6));
}

TEST_CASE("QDQ as other tools write it keeps its codes", "[onnx][import][qdq]") {
    test::temp_dir dir;
    builder b({6});
    // An int8 activation (zero point -3): shrink's uint8 inputs with the zero point at 125.
    b.init("x_scale", {}, {0.02f});
    b.init_8bit("x_zero", {}, {-3});
    b.node("QuantizeLinear", {"x", "x_scale", "x_zero"}, "xq");
    b.node("DequantizeLinear", {"xq", "x_scale", "x_zero"}, "xdq");
    // A MatMul weight [in, out] of uint8 codes with one scale and zero point per output (axis 1).
    std::vector<int> codes;
    for (int i = 0; i < 6 * 4; ++i) codes.push_back((i * 37) % 256);
    b.init_8bit("w1_q", {6, 4}, codes, true);
    b.init("w1_scale", {4}, {0.01f, 0.02f, 0.015f, 0.03f});
    b.init_8bit("w1_zero", {4}, {128, 120, 131, 100}, true);
    builder::integer(b.node("DequantizeLinear", {"w1_q", "w1_scale", "w1_zero"}, "w1"), "axis", 1);
    b.node("MatMul", {"xdq", "w1"}, "h");
    b.init("b1", {4}, {0.1f, -0.2f, 0.0f, 0.3f});
    b.node("Add", {"h", "b1"}, "hb");
    b.node("Relu", {"hb"}, "r");
    // A Gemm weight [out, in] of int8 codes with one scale, alpha 0.5 folded into it.
    b.init_8bit("w2_q", {3, 4}, {-128, 127, 5, -7, 0, 1, 2, 3, 100, -100, 50, -50});
    b.init("w2_scale", {}, {0.04f});
    b.node("DequantizeLinear", {"w2_q", "w2_scale"}, "w2");
    auto* gemm = b.node("Gemm", {"r", "w2"}, "y");
    builder::integer(gemm, "transB", 1);
    builder::real(gemm, "alpha", 0.5f);
    b.output("y");
    const model m = import_and_compare(b, dir / "qdq.onnx", {6}, 7, 9);
    REQUIRE(m.layers.size() == 3);
    REQUIRE(m.layers[0].input_quantization);
    CHECK(m.layers[0].input_quantization->zero_point == 125);
    const tensor& w1 = m.at(m.layers[0].weight);
    REQUIRE(w1.quant);
    CHECK_FALSE(w1.quant->symmetric);
    CHECK(w1.quant->group_size == 6);  // per output channel
    CHECK(w1.shape == std::vector<int64_t>{4, 6});
    CHECK(int(w1.q[1 * 6 + 2]) == codes[2 * 4 + 1] - 128);  // output 1, input 2, transposed and shifted
    CHECK(w1.zero_points == std::vector<int8_t>{0, -8, 3, -28});
    const tensor& w2 = m.at(m.layers[2].weight);
    REQUIRE(w2.quant);
    CHECK(w2.quant->symmetric);
    CHECK(w2.quant->group_size == 0);
    CHECK(w2.scales == std::vector<float>{0.02f});
    CHECK(w2.encoding_summary() == "int8 sym per-tensor");
}

TEST_CASE("a quantized activation read by anything but a Gemm, MatMul or Conv is refused", "[onnx][import][qdq]") {
    test::temp_dir dir;
    builder b({4});
    b.init("s", {}, {0.1f});
    b.node("QuantizeLinear", {"x", "s"}, "q");
    b.node("DequantizeLinear", {"q", "s"}, "dq");
    b.node("Relu", {"dq"}, "y");
    b.output("y");
    b.save(dir / "relu.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "relu.onnx"),
                      Contains("relu.onnx: error: node 'QuantizeLinear_q' (QuantizeLinear): its quantized value is read by a Relu node"));
    builder other({4});
    other.init("s", {}, {0.1f});
    other.init("t", {}, {0.2f});
    other.node("QuantizeLinear", {"x", "s"}, "q");
    other.node("DequantizeLinear", {"q", "t"}, "dq");
    other.init("w", {4, 2}, random_values(8, 1));
    other.node("MatMul", {"dq", "w"}, "y");
    other.output("y");
    other.save(dir / "other.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "other.onnx"), Contains("its DequantizeLinear uses another scale or zero point"));
}
