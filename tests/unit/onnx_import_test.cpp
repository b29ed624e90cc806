// Importing ONNX MLPs as shrink models: what PyTorch exports (MatMul + Add, shape
// subgraphs for view/flatten) becomes linear layers that compute what the ONNX graph does.
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "onnx/interpreter.hpp"
#include "runtime/engine.hpp"
#include "support.hpp"
#include "util/errors.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>
#include <onnx/onnx_pb.h>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {

struct builder {
    onnx::ModelProto proto;
    onnx::GraphProto* g;
    explicit builder(const std::vector<int64_t>& input_dims) {
        proto.set_ir_version(7);
        proto.add_opset_import()->set_version(13);
        g = proto.mutable_graph();
        auto* in = g->add_input();
        in->set_name("x");
        auto* t = in->mutable_type()->mutable_tensor_type();
        t->set_elem_type(onnx::TensorProto::FLOAT);
        t->mutable_shape()->add_dim()->set_dim_param("batch");
        for (int64_t d : input_dims) t->mutable_shape()->add_dim()->set_dim_value(d);
    }
    void init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
        auto* t = g->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        for (int64_t d : dims) t->add_dims(d);
        for (float x : v) t->add_float_data(x);
    }
    void init_i64(const std::string& name, const std::vector<int64_t>& v) {
        auto* t = g->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::INT64);
        t->add_dims(int64_t(v.size()));
        for (int64_t x : v) t->add_int64_data(x);
    }
    onnx::NodeProto* node(const std::string& op, std::vector<std::string> in, const std::string& out) {
        auto* n = g->add_node();
        n->set_op_type(op);
        n->set_name(op + "_" + out);
        for (auto& i : in) n->add_input(i);
        n->add_output(out);
        return n;
    }
    void output(const std::string& name) { g->add_output()->set_name(name); }
    void save(const std::filesystem::path& file) {
        std::string bytes;
        proto.SerializeToString(&bytes);
        test::write_text(file, bytes);
    }
};

std::vector<float> random_values(size_t n, uint64_t seed) {
    rng gen(seed);
    std::vector<float> v(n);
    for (float& x : v) x = float(gen.normal() * 0.3);
    return v;
}

}  // namespace

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
    CHECK(m.layers.size() == 4);  // fc1, relu1, fc2, softmax: the shape arithmetic folded away
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
    builder b({1, 4, 4});
    b.init("k", {2, 1, 3, 3}, random_values(18, 7));
    b.node("Conv", {"x", "k"}, "y");
    b.output("y");
    b.save(dir / "cnn.onnx");
    CHECK_THROWS_WITH(onnx_import::import_onnx(dir / "cnn.onnx"),
                      Contains("cnn.onnx: error: node 'Conv_y' (Conv) is not supported by shrink's model graph yet"));
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
