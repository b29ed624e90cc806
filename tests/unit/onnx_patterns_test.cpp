// GELU as exporters write it, found by the graph's structure: every spelling becomes one
// gelu or gelu_tanh layer that computes what the ONNX graph computes, whatever the node
// order and whether constants are Constant nodes or initializers. Near misses stay
// unfused (and are refused at their Erf or Tanh-free remainder, naming the node).
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "onnx/interpreter.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"
#include "unit/onnx_builder.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

using namespace shrink;
using test::builder;
using test::import_and_compare;
using test::random_values;
using Catch::Matchers::Contains;

namespace {

/// fc -> GELU spelt by `gelu` (from value "h" to value "g") -> fc; imported and compared.
template <class Spell>
std::vector<std::string> import_spelling(Spell gelu, bool constants_as_nodes, int64_t opset = 13) {
    test::temp_dir dir;
    builder b({6}, opset);
    b.init("w1", {6, 5}, random_values(30, 1, 0.8f));
    b.node("MatMul", {"x", "w1"}, "h");
    // A scalar: a Constant node right before its reader (PyTorch), or an initializer.
    auto scalar = [&](const std::string& name, float v) {
        if (constants_as_nodes) b.constant(name, {}, {v});
        else b.init(name, {}, {v});
        return name;
    };
    gelu(b, scalar);
    b.init("w2", {5, 3}, random_values(15, 2, 0.8f));
    b.node("MatMul", {"g", "w2"}, "y");
    b.output("y");
    const model m = import_and_compare(b, dir / "gelu.onnx", {6}, 4, 3);
    std::vector<std::string> ops;
    for (const layer& l : m.layers) ops.push_back(l.op);
    return ops;
}

using scalar_fn = std::function<std::string(const std::string&, float)>;

}  // namespace

TEST_CASE("GELU's erf form imports as one gelu layer in every spelling", "[onnx][import][patterns]") {
    const std::vector<std::string> want{"linear", "gelu", "linear"};
    for (bool nodes : {true, false}) {
        INFO("constants as Constant nodes: " << nodes);
        // PyTorch's nn.GELU: x * (1 + erf(x / sqrt2)), then * 0.5.
        CHECK(import_spelling([](builder& b, const scalar_fn& c) {
            b.node("Div", {"h", c("root2", 1.4142135f)}, "s");
            b.node("Erf", {"s"}, "e");
            b.node("Add", {"e", c("one", 1.0f)}, "p");
            b.node("Mul", {"h", "p"}, "q");
            b.node("Mul", {"q", c("half", 0.5f)}, "g");
        }, nodes) == want);
        // The other order: (x * 0.5) first, x * (1/sqrt2), 1 + erf with the constant first.
        CHECK(import_spelling([](builder& b, const scalar_fn& c) {
            b.node("Mul", {c("half", 0.5f), "h"}, "hh");
            b.node("Mul", {"h", c("inv_root2", 0.70710678f)}, "s");
            b.node("Erf", {"s"}, "e");
            b.node("Add", {c("one", 1.0f), "e"}, "p");
            b.node("Mul", {"p", "hh"}, "g");
        }, nodes) == want);
        // Halved by a division: x * (1 + erf(x / sqrt2)) / 2.
        CHECK(import_spelling([](builder& b, const scalar_fn& c) {
            b.node("Div", {"h", c("root2", 1.4142135f)}, "s");
            b.node("Erf", {"s"}, "e");
            b.node("Add", {"e", c("one", 1.0f)}, "p");
            b.node("Mul", {"p", "h"}, "q");
            b.node("Div", {"q", c("two", 2.0f)}, "g");
        }, nodes) == want);
    }
}

TEST_CASE("GELU's tanh approximation imports as one gelu_tanh layer", "[onnx][import][patterns]") {
    const std::vector<std::string> want{"linear", "gelu_tanh", "linear"};
    // nn.GELU(approximate='tanh') in PyTorch 1.13: x^3 as x * (x * x), constants first.
    CHECK(import_spelling([](builder& b, const scalar_fn& c) {
        b.node("Mul", {"h", "h"}, "sq");
        b.node("Mul", {"h", "sq"}, "cube");
        b.node("Mul", {c("kappa", 0.044715f), "cube"}, "k");
        b.node("Add", {"h", "k"}, "in");
        b.node("Mul", {c("beta", 0.7978846f), "in"}, "u");
        b.node("Tanh", {"u"}, "t");
        b.node("Add", {c("one", 1.0f), "t"}, "p");
        b.node("Mul", {"h", "p"}, "q");
        b.node("Mul", {c("half", 0.5f), "q"}, "g");
    }, true) == want);
    // Hugging Face's NewGELU: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * pow(x, 3)))).
    CHECK(import_spelling([](builder& b, const scalar_fn& c) {
        b.node("Mul", {"h", c("half", 0.5f)}, "hh");
        b.node("Pow", {"h", c("three", 3.0f)}, "cube");
        b.node("Mul", {"cube", c("kappa", 0.044715f)}, "k");
        b.node("Add", {"h", "k"}, "in");
        b.node("Mul", {"in", c("beta", 0.7978846f)}, "u");
        b.node("Tanh", {"u"}, "t");
        b.node("Add", {"t", c("one", 1.0f)}, "p");
        b.node("Mul", {"hh", "p"}, "g");
    }, false) == want);
    // FastGELU / Megatron's bias_gelu: tanh(0.79788456 * x * (1 + 0.044715 * x * x)).
    CHECK(import_spelling([](builder& b, const scalar_fn& c) {
        b.node("Mul", {"h", c("beta", 0.79788456f)}, "bx");
        b.node("Mul", {c("kappa", 0.044715f), "h"}, "kx");
        b.node("Mul", {"kx", "h"}, "kxx");
        b.node("Add", {c("one_a", 1.0f), "kxx"}, "poly");
        b.node("Mul", {"bx", "poly"}, "u");
        b.node("Tanh", {"u"}, "t");
        b.node("Add", {"t", c("one_b", 1.0f)}, "p");
        b.node("Mul", {"h", "p"}, "q");
        b.node("Mul", {"q", c("half", 0.5f)}, "g");
    }, true) == want);
}

TEST_CASE("opset 20's Gelu imports in both approximations", "[onnx][import][patterns]") {
    for (const char* approximate : {"none", "tanh"}) {
        CHECK(import_spelling([&](builder& b, const scalar_fn&) {
            builder::text(b.node("Gelu", {"h"}, "g"), "approximate", approximate);
        }, false, 20) == std::vector<std::string>{"linear", std::string(approximate) == "none" ? "gelu" : "gelu_tanh", "linear"});
    }
}

TEST_CASE("near misses of GELU are not fused", "[onnx][import][patterns]") {
    test::temp_dir dir;
    // The erf form with 0.6 for 0.5: another function, left as it is (and refused at Erf).
    builder wrong({4});
    wrong.constant("root2", {}, {1.4142135f});
    wrong.node("Div", {"x", "root2"}, "s");
    wrong.node("Erf", {"s"}, "e");
    wrong.constant("one", {}, {1.0f});
    wrong.node("Add", {"e", "one"}, "p");
    wrong.node("Mul", {"x", "p"}, "q");
    wrong.constant("c", {}, {0.6f});
    wrong.node("Mul", {"q", "c"}, "y");
    wrong.output("y");
    wrong.save(dir / "wrong.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "wrong.onnx"), Contains("node 'Erf_e' (Erf): the op is not supported"));
    // The right constants, but the erf is also read by another node: fusing would lose it.
    builder shared({4});
    shared.constant("root2", {}, {1.4142135f});
    shared.node("Div", {"x", "root2"}, "s");
    shared.node("Erf", {"s"}, "e");
    shared.constant("one", {}, {1.0f});
    shared.node("Add", {"e", "one"}, "p");
    shared.node("Mul", {"x", "p"}, "q");
    shared.constant("half", {}, {0.5f});
    shared.node("Mul", {"q", "half"}, "y");
    shared.node("Relu", {"e"}, "r");
    shared.node("Add", {"y", "r"}, "z");
    shared.output("z");
    shared.save(dir / "shared.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "shared.onnx"), Contains("(Erf): the op is not supported"));
}

TEST_CASE("import does not depend on the order nodes are listed in", "[onnx][import][patterns]") {
    test::temp_dir dir;
    builder b({6});
    b.init("w1", {6, 5}, random_values(30, 1, 0.8f));
    b.node("MatMul", {"x", "w1"}, "h");
    b.constant("root2", {}, {1.4142135f});
    b.node("Div", {"h", "root2"}, "s");
    b.node("Erf", {"s"}, "e");
    b.constant("one", {}, {1.0f});
    b.node("Add", {"e", "one"}, "p");
    b.node("Mul", {"h", "p"}, "q");
    b.constant("half", {}, {0.5f});
    b.node("Mul", {"q", "half"}, "g");
    b.init("w2", {5, 3}, random_values(15, 2, 0.8f));
    b.node("MatMul", {"g", "w2"}, "y");
    b.output("y");
    b.save(dir / "sorted.onnx");
    const model sorted = onnx_import::import_onnx(dir / "sorted.onnx");
    // The same nodes listed backwards: ONNX Runtime runs such a file, and so does shrink.
    auto* nodes = b.proto.mutable_graph()->mutable_node();
    std::reverse(nodes->begin(), nodes->end());
    const model reversed = import_and_compare(b, dir / "reversed.onnx", {6}, 3, 4);
    REQUIRE(reversed.layers.size() == 3);
    CHECK(reversed.layers[1].op == "gelu");
    const std::vector<float> x = random_values(6 * 2, 5);
    CHECK(engine(reversed).run(x.data(), 2) == engine(sorted).run(x.data(), 2));
    // A cycle is refused, naming a node on it.
    builder cycle({4});
    cycle.node("Add", {"x", "b"}, "a");
    cycle.node("Relu", {"a"}, "b");
    cycle.output("b");
    cycle.save(dir / "cycle.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "cycle.onnx"), Contains("cycle.onnx: error: the graph has a cycle through node 'Add_a'"));
}

TEST_CASE("gelu and gelu_tanh export as PyTorch writes them and import back as themselves", "[onnx][import][patterns]") {
    test::temp_dir dir;
    model m = test::tiny_model(4, 12);
    m.find_layer("relu1")->op = "gelu";
    m.find_layer("relu2")->op = "gelu_tanh";
    onnx_import::save_onnx(m, dir / "gelus.onnx");
    const onnx_import::graph g = onnx_import::read_model(dir / "gelus.onnx");
    CHECK(std::count_if(g.nodes.begin(), g.nodes.end(), [](const onnx_import::node& n) { return n.op == "Erf"; }) == 1);
    CHECK(std::count_if(g.nodes.begin(), g.nodes.end(), [](const onnx_import::node& n) { return n.op == "Tanh"; }) == 1);
    const model back = onnx_import::import_onnx(dir / "gelus.onnx");
    REQUIRE(back.layers.size() == m.layers.size());
    CHECK(back.layers[1].op == "gelu");
    CHECK(back.layers[3].op == "gelu_tanh");
    const std::vector<float> x = random_values(4 * 12, 8, 2.0f);
    const std::vector<float> want = engine(m).run(x.data(), 4), got = engine(back).run(x.data(), 4);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-7));
    // The exported graph computes the same in the reference interpreter.
    const auto ref = onnx_import::run_graph(g, {{"input", {onnx_import::element::f32, {4, 12}, {x.begin(), x.end()}}}})[0];
    for (size_t i = 0; i < got.size(); ++i) CHECK(ref.data[i] == Approx(want[i]).margin(2e-6));
}
