// The op table (model/ops.def) is the one list of ops: every op in it is handled by the
// graph, the model file, the CPU engine, training and ONNX export. Each op alone in a
// small model: its shape rule, a save/load round trip of its attributes, the engine's
// output against training's float64 forward pass, and the ONNX node it exports as. An op
// added to ops.def but not handled somewhere fails here (or does not compile: the engines
// switch over op_kind without a default). The language-model ops (embedding, rms_norm,
// attention) are not trained or exported to ONNX yet: here those refuse them, naming the
// op, and tests/unit/decoder_test.cpp checks the engine against a direct reference.
#include "cpu/engine.hpp"
#include "model/graph_schema.hpp"
#include "model/ops.hpp"
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "support.hpp"
#include "train/net.hpp"

#include <catch2/catch.hpp>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <set>

using namespace shrink;

namespace {

/// A model whose last layer is `op`, fed by the input (and, for joins, by a sigmoid of it).
model one_op_model(const op_info& op) {
    model m;
    rng g(11);
    m.input_shape = {2, 4, 4};
    m.input_features = 32;
    std::string second;
    auto sigmoid_of_input = [&] {
        m.layers.push_back(make_layer("gate", "sigmoid", "input", "gate.out"));
        second = "gate.out";
    };
    layer l = make_layer("op", op.name, "input", "op.out");
    switch (op.kind) {
        case op_kind::linear:
        case op_kind::softmax:
        case op_kind::log_softmax:
            m.input_shape.clear();
            m.input_features = 8;
            if (op.kind == op_kind::linear) {
                l.weight = test::add_random_tensor(m, g, "op.weight", {3, 8}, 0.5);
                l.bias = test::add_random_tensor(m, g, "op.bias", {3}, 0.1);
            }
            break;
        case op_kind::conv:
            l.weight = test::add_random_tensor(m, g, "op.weight", {3, 2, 3, 3}, 0.5);
            l.bias = test::add_random_tensor(m, g, "op.bias", {3}, 0.1);
            l.win.kernel = {3, 3};
            l.win.pads = {1, 1, 1, 1};
            break;
        case op_kind::batchnorm:
            l.weight = test::add_random_tensor(m, g, "op.weight", {2}, 1.0);
            l.bias = test::add_random_tensor(m, g, "op.bias", {2}, 0.1);
            break;
        case op_kind::leaky_relu: l.alpha = 0.1f; break;
        case op_kind::clip:
            l.alpha = -0.5f;
            l.beta = 0.5f;
            break;
        case op_kind::relu:
        case op_kind::sigmoid:
        case op_kind::tanh:
        case op_kind::gelu:
        case op_kind::gelu_tanh:
        case op_kind::global_avg_pool:
        case op_kind::flatten: break;
        case op_kind::silu: break;
        case op_kind::rms_norm:
            m.input_shape.clear();
            m.input_features = 8;
            l.weight = test::add_random_tensor(m, g, "op.weight", {8}, 1.0);
            l.alpha = 1e-5f;
            break;
        case op_kind::embedding:
        case op_kind::attention:  // fed by the tokens: an embedding, then q, k, v projections
            m.input_shape.clear();
            m.input_features = 2;
            if (op.kind == op_kind::embedding) {
                l.weight = test::add_random_tensor(m, g, "op.weight", {5, 4}, 1.0);
            } else {
                m.layers.push_back(make_layer("emb", "embedding", "input", "emb.out", test::add_random_tensor(m, g, "emb.weight", {5, 8}, 1.0)));
                for (const char* p : {"q", "k", "v"})
                    m.layers.push_back(make_layer(p, "linear", "emb.out", std::string(p) + ".out",
                                                  test::add_random_tensor(m, g, std::string(p) + ".weight", {*p == 'q' ? 8 : 4, 8}, 0.5)));
                l.input = "q.out";
                l.more_inputs = {"k.out", "v.out", "input"};
                l.attn = attention_spec{2, 1, 4, 10000.0};
            }
            break;
        case op_kind::max_pool:
        case op_kind::avg_pool: l.win.kernel = l.win.strides = {2, 2}; break;
        case op_kind::reshape: l.shape = {4, 8}; break;
        case op_kind::add:
        case op_kind::sub:
        case op_kind::mul:
        case op_kind::div:
        case op_kind::concat:
            sigmoid_of_input();
            l.more_inputs = {second};
            break;
    }
    m.layers.push_back(l);
    m.output = "op.out";
    return m;
}

}  // namespace

TEST_CASE("the op table names each op once and agrees with the graph's helpers", "[ops]") {
    std::set<std::string> names;
    for (const op_info& op : op_table()) {
        INFO(op.name);
        CHECK(names.insert(op.name).second);
        CHECK(find_op(op.name) == &op);
        CHECK(&op_of(op.kind) == &op);
        CHECK(has_matrix(op.name) == op.has(OP_MATRIX));
        CHECK(is_binary(op.name) == (op.inputs == 2));
        if (op.has(OP_MATRIX)) CHECK(op.has(OP_WEIGHT));
    }
    std::vector<std::string> in_order;
    for (const op_info& op : op_table()) in_order.push_back(op.name);
    CHECK(known_ops() == in_order);
    CHECK_THROWS_WITH(op_kind_of("softplus"), Catch::Contains("unknown op 'softplus'") && Catch::Contains("gelu_tanh"));
}

TEST_CASE("every op of the table runs in the engine as in training, survives a file and exports", "[ops][onnx]") {
    for (const op_info& op : op_table()) {
        INFO(op.name);
        const model m = one_op_model(op);
        REQUIRE_NOTHROW(m.validate());

        // Its attributes survive the model file.
        test::temp_dir dir;
        save_model(m, dir / "m.safetensors");
        const model back = load_model(dir / "m.safetensors");
        CHECK(graph_to_json(back) == graph_to_json(m));

        // The engine computes what training's float64 forward pass computes.
        rng g(5);
        const int64_t rows = 3;
        std::vector<float> x(size_t(rows * m.input_features));
        for (float& v : x) v = float(g.normal());
        const bool lm = op.kind == op_kind::embedding || op.kind == op_kind::rms_norm || op.kind == op_kind::attention;
        if (m.input_features == 2)  // tokens: id, position
            for (int64_t r = 0; r < rows; ++r) x[size_t(r * 2)] = float(r + 1), x[size_t(r * 2 + 1)] = float(r);
        const std::vector<float> got = engine(m).run(x.data(), rows);
        CHECK(got.size() == size_t(rows * engine(m).output_width()));
        train::net<double> reference(m);
        const std::vector<double> xd(x.begin(), x.end());
        reference.forward(xd.data(), rows, false);
        const std::vector<double>& want = reference.value(m.output);
        REQUIRE(got.size() == want.size());
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]) / (1 + std::abs(want[i])));
        CHECK(worst < 1e-5);
        if (lm) {
            // The attention model starts with an embedding, refused first.
            const std::string first = op.kind == op_kind::attention ? "embedding" : op.name;
            CHECK_THROWS_WITH(onnx_import::export_onnx(m), Catch::Contains("ONNX export does not write '" + first + "' yet"));
            continue;
        }

        // It exports as the ONNX op the table names (gelu: its formula, with Erf or Tanh).
        onnx::ModelProto proto;
        REQUIRE(proto.ParseFromString(onnx_import::export_onnx(m)));
        std::set<std::string> types;
        for (const auto& n : proto.graph().node()) types.insert(n.op_type());
        const std::string expected = op.kind == op_kind::gelu        ? "Erf"
                                     : op.kind == op_kind::gelu_tanh ? "Tanh"
                                     : op.kind == op_kind::silu      ? "Sigmoid"
                                                                     : op.onnx;
        CHECK(types.count(expected) == 1);
    }
}
