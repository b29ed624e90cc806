// Exported ONNX runs to the same outputs as shrink's engine, for every encoding: checked
// with the reference interpreter (itself checked against ONNX's conformance data).
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "onnx/interpreter.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>
#include <onnx/onnx_pb.h>

using namespace shrink;

namespace {

void check_export_matches_engine(const model& m, const std::string& what) {
    test::temp_dir dir;
    onnx_import::save_onnx(m, dir / "m.onnx");
    const onnx_import::graph g = onnx_import::read_model(dir / "m.onnx");
    const int64_t rows = 7;
    rng gen(3);
    onnx_import::nd_tensor x{onnx_import::element::f32, {rows}, {}};
    const std::vector<int64_t> per_sample = m.input_shape.empty() ? std::vector<int64_t>{m.input_features} : m.input_shape;
    x.shape.insert(x.shape.end(), per_sample.begin(), per_sample.end());
    std::vector<float> xf;
    for (int64_t i = 0; i < rows * m.input_features; ++i) {
        xf.push_back(float(gen.uniform()));
        x.data.push_back(xf.back());
    }
    const std::vector<float> want = engine(m).run(xf.data(), rows);
    const auto got = onnx_import::run_graph(g, {{m.input, x}});
    INFO(what);
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].data.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[0].data[i] == Approx(want[i]).margin(2e-6));
}

tensor quantized(const tensor& w, quant_spec spec, uint64_t seed) {
    rng gen(seed);
    const int lo = spec.symmetric ? -(1 << (spec.bits - 1)) + 1 : -(1 << (spec.bits - 1)), hi = (1 << (spec.bits - 1)) - 1;
    std::vector<int8_t> q(w.element_count());
    for (auto& v : q) v = int8_t(lo + int(gen.below(uint64_t(hi - lo + 1))));
    const uint64_t n = tensor::scale_count(w.shape, spec);
    std::vector<float> scales(n);
    for (auto& s : scales) s = float(0.001 + 0.01 * gen.uniform());
    std::vector<int8_t> zeros;
    if (!spec.symmetric)
        for (uint64_t i = 0; i < n; ++i) zeros.push_back(int8_t(int(gen.below(9)) - 4));
    tensor base = w;
    return make_quantized(base, spec, q, scales, zeros);
}

}  // namespace

TEST_CASE("exported ONNX computes what shrink's engine computes, for every encoding", "[onnx][export]") {
    check_export_matches_engine(test::tiny_model(4, 20), "float");

    model q8 = test::tiny_model(5, 20);
    q8.at("fc1.weight") = quantized(q8.at("fc1.weight"), {8, true, 20}, 1);    // per-channel symmetric
    q8.at("fc2.weight") = quantized(q8.at("fc2.weight"), {8, false, 16}, 2);   // per-channel asymmetric
    q8.at("fc3.weight") = quantized(q8.at("fc3.weight"), {8, true, 0}, 3);     // per-tensor
    q8.layers[2].input_quantization = input_quant{0.05f, 3};                   // static int8 input of fc2
    check_export_matches_engine(q8, "int8 QDQ");

    // Per-token dynamic int8 inputs: standard ops in the runtime's order, the same floats.
    model tokens = q8;
    tokens.layers[0].input_quantization = input_quant{1, 0, true};
    tokens.layers[2].input_quantization = input_quant{1, 0, true};
    check_export_matches_engine(tokens, "int8 per-token inputs");

    model grouped = test::tiny_model(6, 20);
    grouped.at("fc1.weight") = quantized(grouped.at("fc1.weight"), {4, true, 8}, 4);  // int4 per group: exported as float
    check_export_matches_engine(grouped, "int4 per group");

    model sparse = test::tiny_model(7, 20);
    tensor& w = sparse.at("fc1.weight");
    w.mask.assign(w.element_count(), 1);
    for (size_t i = 0; i < w.mask.size(); i += 3) w.mask.write()[i] = 0, w.values.write()[i] = 0;
    sparse.at("fc2.weight") = quantized(sparse.at("fc2.weight"), {8, false, 16}, 5);
    check_export_matches_engine(sparse, "sparse");
}

TEST_CASE("exported CNNs compute what shrink's engine computes, for every encoding", "[onnx][export][cnn]") {
    check_export_matches_engine(test::tiny_cnn(1), "float CNN");

    model q8 = test::tiny_cnn(2);
    q8.at("conv1.weight") = quantized(q8.at("conv1.weight"), {8, true, 9}, 1);    // per output channel
    q8.at("conv2.weight") = quantized(q8.at("conv2.weight"), {8, false, 0}, 2);   // per tensor, asymmetric
    q8.find_layer("conv2")->input_quantization = input_quant{0.02f, 5};
    check_export_matches_engine(q8, "int8 QDQ CNN");

    model mixed = test::tiny_cnn(3);
    tensor& w = mixed.at("conv2.weight");
    w.mask.assign(w.element_count(), 1);
    for (size_t i = 0; i < w.mask.size(); i += 2) w.mask.write()[i] = 0, w.values.write()[i] = 0;
    mixed.at("conv1.weight") = quantized(mixed.at("conv1.weight"), {4, true, 3}, 3);  // int4 per group of a channel's 9
    check_export_matches_engine(mixed, "sparse and int4 CNN");

    // Every other activation and op, through export and back.
    model ops = test::tiny_cnn(4);
    ops.find_layer("relu1")->op = "gelu";
    ops.find_layer("leaky2")->op = "clip";
    ops.find_layer("leaky2")->alpha = -0.1f;
    ops.find_layer("leaky2")->beta = 0.2f;
    ops.find_layer("pool2")->win.pads = {1, 1, 0, 0};
    ops.find_layer("pool2")->win.count_include_pad = true;
    ops.layers.back().op = "log_softmax";
    check_export_matches_engine(ops, "gelu, clip, padded average pooling, log_softmax");
}

TEST_CASE("int8 weights are exported as int8 initializers with DequantizeLinear", "[onnx][export]") {
    model q8 = test::tiny_model(5, 20);
    q8.at("fc1.weight") = quantized(q8.at("fc1.weight"), {8, true, 20}, 1);
    onnx::ModelProto proto;
    REQUIRE(proto.ParseFromString(onnx_import::export_onnx(q8)));
    bool int8_initializer = false, dequantize = false;
    for (const auto& t : proto.graph().initializer())
        int8_initializer = int8_initializer || (t.name() == "fc1.weight.q" && t.data_type() == onnx::TensorProto::INT8);
    for (const auto& n : proto.graph().node()) dequantize = dequantize || n.op_type() == "DequantizeLinear";
    CHECK(int8_initializer);
    CHECK(dequantize);
    CHECK(proto.opset_import(0).version() == 13);
}

TEST_CASE("exported graphs with joins compute what shrink's engine computes", "[onnx][export][cnn]") {
    // tiny_cnn(side 12) with, after leaky2 ([6, 6, 6]): a gate from its pooled channels
    // (reshaped to [6, 1, 1]), a broadcast of a [6] vector along the width, a concat with
    // leaky2 along the channels, then a ratio and a difference of activations.
    model m = test::tiny_cnn(5, 12);
    auto add = [&](layer l, std::vector<std::string> more = {}) {
        l.more_inputs = std::move(more);
        m.layers.insert(m.layers.begin() + long(m.layers.size()) - 4, l);  // before pool2, flatten, fc1, softmax
        return l.output;
    };
    add(make_layer("squeeze", "global_avg_pool", "leaky2.out", "squeeze.out"));
    add(make_layer("sflat", "flatten", "squeeze.out", "sflat.out"));
    add(make_layer("gate", "sigmoid", "sflat.out", "gate.out"));
    layer shaped = make_layer("gate4", "reshape", "gate.out", "gate4.out");
    shaped.shape = {6, 1, 1};
    add(shaped);
    add(make_layer("gated", "mul", "leaky2.out", "gated.out"), {"gate4.out"});
    add(make_layer("widthwise", "mul", "gated.out", "widthwise.out"), {"gate.out"});  // [6] along W: exported with a Reshape
    layer cat = make_layer("cat", "concat", "widthwise.out", "cat.out");
    cat.axis = 0;
    add(cat, {"leaky2.out"});
    add(make_layer("sig", "sigmoid", "cat.out", "sig.out"));
    add(make_layer("ratio", "div", "cat.out", "ratio.out"), {"sig.out"});
    add(make_layer("diff", "sub", "ratio.out", "diff.out"), {"cat.out"});
    m.find_layer("pool2")->input = "diff.out";
    rng gen(6);
    m.tensors.erase("fc1.weight");
    test::add_random_tensor(m, gen, "fc1.weight", {10, 12 * 3 * 3}, 0.3);
    m.validate();
    check_export_matches_engine(m, "joins");
}
