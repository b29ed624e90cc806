#include "unit/onnx_builder.hpp"

#include "onnx/import.hpp"
#include "onnx/interpreter.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>

namespace shrink::test {

builder::builder(const std::vector<int64_t>& input_dims, int64_t opset) {
    proto.set_ir_version(7);
    proto.add_opset_import()->set_version(opset);
    g = proto.mutable_graph();
    auto* in = g->add_input();
    in->set_name("x");
    auto* t = in->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("batch");
    for (int64_t d : input_dims) t->mutable_shape()->add_dim()->set_dim_value(d);
}

void builder::init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float x : v) t->add_float_data(x);
}

void builder::init_i64(const std::string& name, const std::vector<int64_t>& v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(int64_t(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
}

void builder::init_8bit(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int>& v, bool unsigned_codes) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(unsigned_codes ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8);
    for (int64_t d : dims) t->add_dims(d);
    for (int x : v) t->add_int32_data(x);  // 8-bit types live in int32_data
}

void builder::constant(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
    auto* n = g->add_node();
    n->set_op_type("Constant");
    n->set_name("Constant_" + name);
    n->add_output(name);
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    auto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float x : v) t->add_float_data(x);
}

onnx::NodeProto* builder::node(const std::string& op, std::vector<std::string> in, const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + out);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
}

void builder::output(const std::string& name) { g->add_output()->set_name(name); }

void builder::ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
}

void builder::integer(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
}

void builder::real(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
}

void builder::text(onnx::NodeProto* n, const std::string& name, const std::string& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
}

void builder::save(const std::filesystem::path& file) {
    std::string bytes;
    proto.SerializeToString(&bytes);
    write_text(file, bytes);
}

std::vector<float> random_values(size_t n, uint64_t seed, float sd) {
    rng gen(seed);
    std::vector<float> v(n);
    for (float& x : v) x = float(gen.normal() * sd);
    return v;
}

model import_and_compare(builder& b, const std::filesystem::path& file, const std::vector<int64_t>& per_sample, int64_t rows,
                         uint64_t seed) {
    b.save(file);
    const model m = onnx_import::import_onnx(file);
    int64_t features = 1;
    for (int64_t d : per_sample) features *= d;
    const std::vector<float> x = random_values(size_t(rows * features), seed);
    std::vector<int64_t> shape{rows};
    shape.insert(shape.end(), per_sample.begin(), per_sample.end());
    const auto want = onnx_import::run_graph(onnx_import::read_model(file), {{"x", {onnx_import::element::f32, shape, {x.begin(), x.end()}}}})[0];
    const std::vector<float> got = engine(m).run(x.data(), rows);
    REQUIRE(got.size() == want.data.size());
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want.data[i]).margin(2e-5).epsilon(1e-4));
    return m;
}

}  // namespace shrink::test
