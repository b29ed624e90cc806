// Importing ONNX MLPs as shrink models: what PyTorch exports (MatMul + Add, shape
// subgraphs for view/flatten) becomes linear layers that compute what the ONNX graph does.
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "onnx/interpreter.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"
#include "unit/onnx_builder.hpp"
#include "util/errors.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>
#include <onnx/onnx_pb.h>

using namespace shrink;
using test::builder;
using test::import_and_compare;
using test::random_values;
using Catch::Matchers::Contains;

TEST_CASE("a model exported to ONNX imports back to the same computation", "[onnx][import]") {
    test::temp_dir dir;
    const model original = test::tiny_model(3, 30);
    onnx_import::save_onnx(original, dir / "m.onnx");
    const model back = onnx_import::import_onnx(dir / "m.onnx");
    REQUIRE(back.layers.size() == original.layers.size());
    const std::vector<float> x = random_values(2 * 30, 1);
    CHECK(engine(back).run(x.data(), 2) == engine(original).run(x.data(), 2));
}

TEST_CASE("a PyTorch-style graph (view via Shape/Gather/Concat/Reshape, MatMul + Add) imports", "[onnx][import]") {
    test::temp_dir dir;
    builder b({1, 4, 5});
    b.init("w1", {20, 6}, random_values(120, 2));
    b.init("b1", {6}, random_values(6, 3));
    b.init("w2", {3, 6}, random_values(18, 4));
    b.init("b2", {3}, random_values(3, 5));
    b.init_i64("zero", {0});
    b.init_i64("minus_one", {-1});
    b.node("Shape", {"x"}, "shape");
    b.node("Gather", {"shape", "zero"}, "n");
    b.node("Concat", {"n", "minus_one"}, "flat_shape")->add_attribute()->CopyFrom([] {
        onnx::AttributeProto a;
        a.set_name("axis");
        a.set_type(onnx::AttributeProto::INT);
        a.set_i(0);
        return a;
    }());
    b.node("Reshape", {"x", "flat_shape"}, "flat");
    b.node("MatMul", {"flat", "w1"}, "h");
    b.node("Add", {"h", "b1"}, "h2");
    b.node("Relu", {"h2"}, "h3");
    auto* gemm = b.node("Gemm", {"h3", "w2", "b2"}, "logits");
    auto* t = gemm->add_attribute();
    t->set_name("transB");
    t->set_type(onnx::AttributeProto::INT);
    t->set_i(1);
    b.node("Softmax", {"logits"}, "y");
    b.output("y");
    b.save(dir / "torch.onnx");

    const model m = onnx_import::import_onnx(dir / "torch.onnx");
    CHECK(m.input_features == 20);
    CHECK(m.layers.size() == 5);  // flatten, fc1, relu1, fc2, softmax: the shape arithmetic folded away
    CHECK(m.layers[0].op == "flatten");
    const onnx_import::graph g = onnx_import::read_model(dir / "torch.onnx");
    const std::vector<float> x = random_values(3 * 20, 6);
    onnx_import::nd_tensor in{onnx_import::element::f32, {3, 1, 4, 5}, std::vector<double>(x.begin(), x.end())};
    const auto want = onnx_import::run_graph(g, {{"x", in}})[0];
    const std::vector<float> got = engine(m).run(x.data(), 3);
    REQUIRE(got.size() == want.data.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want.data[i]).margin(1e-6));
}

TEST_CASE("what shrink's graph cannot hold is refused, naming the node", "[onnx][import]") {
    test::temp_dir dir;
    builder b({4});
    b.node("Relu", {"x"}, "a");
    b.node("Sigmoid", {"x"}, "s");
    b.node("Max", {"a", "s"}, "y");  // a branch joined by an op shrink does not join with
    b.output("y");
    b.save(dir / "max.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "max.onnx"),
                      Contains("max.onnx: error: node 'Max_y' (Max): it reads two or more activations; shrink imports that for Add"));
    builder concat_batch({4});
    concat_batch.node("Relu", {"x"}, "a");
    builder::integer(concat_batch.node("Concat", {"x", "a"}, "y"), "axis", 0);
    concat_batch.output("y");
    concat_batch.save(dir / "concat.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "concat.onnx"), Contains("(Concat): it joins along the batch axis"));
    builder sub({3, 2, 2});
    sub.node("GlobalAveragePool", {"x"}, "g");
    sub.node("Sub", {"g", "x"}, "y");  // the broadcast operand first
    sub.output("y");
    sub.save(dir / "sub.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "sub.onnx"), Contains("its first operand broadcasts to the second, which Sub cannot swap"));
    builder erf({4});
    erf.node("Erf", {"x"}, "y");
    erf.output("y");
    erf.save(dir / "erf.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "erf.onnx"), Contains("node 'Erf_y' (Erf): the op is not supported"));
    // Shapes come from the file: a hostile one fails with a message, not by exhausting memory.
    builder huge({1000000, 1000000});
    huge.node("Relu", {"x"}, "y");
    huge.output("y");
    huge.save(dir / "huge.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "huge.onnx"), Contains("more than 2^24 features"));
    builder expand({4});
    expand.init_i64("big", {100000, 10000, 1, 4});  // broadcasts with [batch, 4] to 8e9 elements
    expand.node("Expand", {"x", "big"}, "y");
    expand.output("y");
    expand.save(dir / "expand.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "expand.onnx"), Contains("more than 2^27 elements"));
    test::write_text(dir / "junk.onnx", "not protobuf at all");
    CHECK_THROWS_AS(onnx_import::import_onnx(dir / "junk.onnx"), input_error);
}

TEST_CASE("a PyTorch-style CNN imports: conv+batchnorm folded, pooling, padding, GELU, normalization", "[onnx][import][cnn]") {
    test::temp_dir dir;
    builder b({2, 9, 9});
    // In-graph normalization, per channel: (x - mean) / std.
    b.init("mean", {2, 1, 1}, {0.1f, -0.2f});
    b.init("std", {2, 1, 1}, {0.5f, 2.0f});
    b.node("Sub", {"x", "mean"}, "centred");
    b.node("Div", {"centred", "std"}, "normal");
    // conv 3x3 stride 1 pad 1, then BatchNormalization (folded), Relu.
    b.init("k1", {4, 2, 3, 3}, random_values(72, 10));
    b.init("c1", {4}, random_values(4, 11));
    builder::ints(b.node("Conv", {"normal", "k1", "c1"}, "conv1"), "pads", {1, 1, 1, 1});
    b.init("gamma", {4}, {1.5f, 0.5f, 1.0f, 2.0f});
    b.init("beta", {4}, {0.1f, 0.0f, -0.3f, 0.2f});
    b.init("mu", {4}, {0.2f, -0.1f, 0.0f, 0.4f});
    b.init("var", {4}, {0.9f, 1.1f, 0.3f, 2.0f});
    builder::real(b.node("BatchNormalization", {"conv1", "gamma", "beta", "mu", "var"}, "bn1"), "epsilon", 1e-3f);
    b.node("Relu", {"bn1"}, "relu1");
    // MaxPool 2x2 stride 2 with ceil_mode: 9 -> 5.
    auto* mp = b.node("MaxPool", {"relu1"}, "pool1");
    builder::ints(mp, "kernel_shape", {2, 2});
    builder::ints(mp, "strides", {2, 2});
    builder::integer(mp, "ceil_mode", 1);
    // Grouped, dilated conv with SAME_UPPER padding, then LeakyRelu (fused as a post-op).
    b.init("k2", {6, 2, 2, 2}, random_values(48, 12));
    auto* c2 = b.node("Conv", {"pool1", "k2"}, "conv2");
    builder::integer(c2, "group", 2);
    builder::ints(c2, "dilations", {2, 2});
    builder::text(c2, "auto_pad", "SAME_UPPER");
    builder::real(b.node("LeakyRelu", {"conv2"}, "leaky"), "alpha", 0.2f);
    // Explicit Pad into a strided conv.
    b.init_i64("pads", {0, 0, 1, 0, 0, 0, 0, 1});
    b.node("Pad", {"leaky", "pads"}, "padded");
    b.init("k3", {5, 6, 3, 3}, random_values(270, 13));
    builder::ints(b.node("Conv", {"padded", "k3"}, "conv3"), "strides", {2, 1});
    b.node("Tanh", {"conv3"}, "tanh");
    auto* ap = b.node("AveragePool", {"tanh"}, "avg");
    builder::ints(ap, "kernel_shape", {2, 2});
    builder::ints(ap, "pads", {1, 1, 0, 0});
    b.node("GlobalAveragePool", {"avg"}, "gap");
    builder::integer(b.node("Flatten", {"gap"}, "flat"), "axis", 1);
    b.init("w1", {8, 5}, random_values(40, 14));
    b.init("b1", {8}, random_values(8, 15));
    builder::integer(b.node("Gemm", {"flat", "w1", "b1"}, "fc1"), "transB", 1);
    // GELU as PyTorch exports it before opset 20.
    b.init("root2", {}, {1.4142135f});
    b.init("one", {}, {1.0f});
    b.init("half", {}, {0.5f});
    b.node("Div", {"fc1", "root2"}, "g1");
    b.node("Erf", {"g1"}, "g2");
    b.node("Add", {"g2", "one"}, "g3");
    b.node("Mul", {"fc1", "g3"}, "g4");
    b.node("Mul", {"g4", "half"}, "gelu");
    b.init("w2", {8, 3}, random_values(24, 16));
    b.node("MatMul", {"gelu", "w2"}, "fc2");
    b.node("LogSoftmax", {"fc2"}, "y");
    b.output("y");

    const model m = import_and_compare(b, dir / "cnn.onnx", {2, 9, 9}, 3, 17);
    CHECK(m.input_shape == std::vector<int64_t>{2, 9, 9});
    std::vector<std::string> ops;
    for (const layer& l : m.layers) ops.push_back(l.op);
    // The batchnorm is folded into conv1 at import; the Pad into conv3; GELU is one layer.
    CHECK(ops == std::vector<std::string>{"batchnorm", "batchnorm", "conv", "relu", "max_pool", "conv", "leaky_relu", "conv", "tanh",
                                          "avg_pool", "global_avg_pool", "flatten", "linear", "gelu", "linear", "log_softmax"});
    CHECK(m.layers[7].win.pads == std::array<int64_t, 4>{1, 0, 0, 1});
    // The engine fuses relu and leaky relu into their convs and runs flatten as a view.
    CHECK(engine(m).step_summary().size() == 12);
}

TEST_CASE("residual joins, gates and branches import: Add, Mul, Sub, Div and Concat of activations", "[onnx][import][cnn]") {
    test::temp_dir dir;
    builder b({16, 6, 6});
    auto conv = [&](const std::string& in, const std::string& out, int64_t in_c, int64_t out_c, int64_t k, uint64_t seed) {
        b.init(out + ".w", {out_c, in_c, k, k}, random_values(size_t(out_c * in_c * k * k), seed, 0.2f));
        b.init(out + ".b", {out_c}, random_values(size_t(out_c), seed + 1, 0.1f));
        onnx::NodeProto* n = b.node("Conv", {in, out + ".w", out + ".b"}, out);
        if (k == 3) builder::ints(n, "pads", {1, 1, 1, 1});
    };
    // A ResNet basic block: conv relu conv, plus the block's input, relu.
    conv("x", "c1", 16, 16, 3, 30);
    b.node("Relu", {"c1"}, "r1");
    conv("r1", "c2", 16, 16, 3, 32);
    b.node("Add", {"x", "c2"}, "sum");  // the skip comes first; shrink puts it first too
    b.node("Relu", {"sum"}, "block");
    // A squeeze-and-excitation gate: pooled channels through two layers, a sigmoid, and
    // the image scaled per channel (the gate reshaped from [C] features to [C, 1, 1]).
    b.node("GlobalAveragePool", {"block"}, "squeeze");
    builder::integer(b.node("Flatten", {"squeeze"}, "sflat"), "axis", 1);
    b.init("se1", {16, 4}, random_values(64, 34, 0.3f));
    b.node("MatMul", {"sflat", "se1"}, "e1");
    b.node("Relu", {"e1"}, "e1r");
    b.init("se2", {4, 16}, random_values(64, 35, 0.3f));
    b.node("MatMul", {"e1r", "se2"}, "e2");
    b.node("Sigmoid", {"e2"}, "gate");
    b.init_i64("gate_shape", {-1, 16, 1, 1});
    b.node("Reshape", {"gate", "gate_shape"}, "gate4");
    b.node("Mul", {"gate4", "block"}, "gated");  // the broadcast operand first: Mul swaps
    // Two branches (1x1 and 3x3), concatenated along the channels, then the difference and
    // ratio of two activations.
    conv("gated", "a1", 16, 8, 1, 36);
    conv("gated", "a3", 16, 8, 3, 38);
    builder::integer(b.node("Concat", {"a1", "a3"}, "cat"), "axis", 1);
    b.node("Sigmoid", {"cat"}, "sig");
    b.node("Sub", {"cat", "gated"}, "diff");
    b.init("two", {}, {2.0f});
    b.node("Add", {"sig", "two"}, "denominator");
    b.node("Div", {"diff", "denominator"}, "ratio");
    b.node("GlobalAveragePool", {"ratio"}, "gap");
    builder::integer(b.node("Flatten", {"gap"}, "flat"), "axis", 1);
    b.init("head", {16, 5}, random_values(80, 40, 0.3f));
    b.node("MatMul", {"flat", "head"}, "logits");
    b.node("Softmax", {"logits"}, "y");
    b.output("y");

    for (int64_t rows : {1, 3, 40}) {
        const model m = import_and_compare(b, dir / "resnet.onnx", {16, 6, 6}, rows, 41);
        std::vector<std::string> ops;
        for (const layer& l : m.layers) ops.push_back(l.op);
        CHECK(ops == std::vector<std::string>{"conv", "relu", "conv", "add", "relu", "global_avg_pool", "flatten", "linear", "relu",
                                              "linear", "sigmoid", "reshape", "mul", "conv", "conv", "concat", "sigmoid", "sub",
                                              "batchnorm", "div", "global_avg_pool", "flatten", "linear", "softmax"});
        CHECK(m.layers[3].input == "input");  // the skip
        CHECK(m.layers[3].more_inputs == std::vector<std::string>{"conv2.out"});
        CHECK(m.layers[12].input == "relu2.out");  // the image, before the gate
        CHECK(m.layers[11].shape == std::vector<int64_t>{16, 1, 1});
        // Through safetensors and back: the joins keep their operands.
        const model back = parse_model(serialize_model(m), "resnet.safetensors");
        CHECK(back.layers[15].more_inputs == m.layers[15].more_inputs);
        CHECK(back.layers[11].shape == m.layers[11].shape);
    }
}

TEST_CASE("the remaining element-wise and shape ops import", "[onnx][import]") {
    test::temp_dir dir;
    builder b({3, 4, 4});
    b.init("lo", {}, {-0.2f});
    b.init("hi", {}, {0.3f});
    b.node("Clip", {"x", "lo", "hi"}, "c");
    b.node("Identity", {"c"}, "i");
    b.node("Dropout", {"i"}, "d");
    b.init("scale", {3, 1, 1}, {2.0f, -1.0f, 0.5f});
    b.node("Mul", {"scale", "d"}, "m");
    b.init("shift", {}, {0.25f});
    b.node("Add", {"m", "shift"}, "a");
    b.node("Sigmoid", {"a"}, "s");
    auto* mean = b.node("ReduceMean", {"s"}, "r");
    builder::ints(mean, "axes", {2, 3});
    builder::integer(mean, "keepdims", 0);
    b.init_i64("unsq", {2});
    b.node("Unsqueeze", {"r", "unsq"}, "u");
    b.node("Squeeze", {"u", "unsq"}, "q");
    builder::ints(b.node("Transpose", {"q"}, "t"), "perm", {0, 1});
    b.node("Softmax", {"t"}, "y");
    b.output("y");
    const model m = import_and_compare(b, dir / "ops.onnx", {3, 4, 4}, 2, 18);
    CHECK(m.layers.back().op == "softmax");
}
