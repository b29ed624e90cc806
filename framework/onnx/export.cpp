#include "onnx/export.hpp"

#include "util/files.hpp"

#include <map>

#include <onnx/onnx_pb.h>

namespace shrink::onnx_import {

namespace {

void set_raw(onnx::TensorProto* t, const void* data, size_t bytes) { t->set_raw_data(std::string(static_cast<const char*>(data), bytes)); }

void add_float(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : shape) t->add_dims(d);
    set_raw(t, v.data(), v.size() * 4);
}

template <class T>
void add_typed(onnx::GraphProto* g, const std::string& name, int32_t type, const std::vector<int64_t>& shape, const std::vector<T>& v) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : shape) t->add_dims(d);
    set_raw(t, v.data(), v.size() * sizeof(T));
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::string& name, std::vector<std::string> in,
                          std::vector<std::string> out) {
    onnx::NodeProto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& i : in) n->add_input(i);
    for (const std::string& o : out) n->add_output(o);
    return n;
}

void int_attr(onnx::NodeProto* n, const char* name, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
}

void io(onnx::ValueInfoProto* v, const std::string& name, int64_t features) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("batch");
    t->mutable_shape()->add_dim()->set_dim_value(features);
}

/// The float weight an engine should see, or "" when the weight is exported as QDQ.
std::string weight_input(onnx::GraphProto* g, const layer& l, const tensor& w) {
    const bool qdq = w.quant && w.quant->bits == 8 && (w.quant->group_size == 0 || w.quant->group_size >= w.cols());
    if (!qdq) {
        add_float(g, l.weight, w.shape, w.decode());
        return l.weight;
    }
    // Pruned positions hold their zero point (model.hpp's canonical form): they dequantize to 0.
    add_typed(g, l.weight + ".q", onnx::TensorProto::INT8, w.shape, w.q);
    const bool per_channel = w.quant->group_size != 0;
    const std::vector<int64_t> scale_shape = per_channel ? std::vector<int64_t>{w.shape[0]} : std::vector<int64_t>{};
    add_float(g, l.weight + ".scale", scale_shape, w.scales);
    std::vector<int8_t> zeros = w.zero_points.empty() ? std::vector<int8_t>(w.scales.size(), 0) : w.zero_points;
    add_typed(g, l.weight + ".zero_point", onnx::TensorProto::INT8, scale_shape, zeros);
    onnx::NodeProto* dq = add_node(g, "DequantizeLinear", l.name + ".dequantize_weight",
                                   {l.weight + ".q", l.weight + ".scale", l.weight + ".zero_point"}, {l.weight});
    if (per_channel) int_attr(dq, "axis", 0);
    return l.weight;
}

}  // namespace

std::string export_onnx(const model& m) {
    m.validate();
    onnx::ModelProto proto;
    proto.set_ir_version(7);
    proto.set_producer_name("shrink");
    proto.add_opset_import()->set_version(13);
    onnx::GraphProto* g = proto.mutable_graph();
    g->set_name("shrink");
    io(g->add_input(), m.input, m.input_features);
    std::map<std::string, int64_t> width{{m.input, m.input_features}};
    for (const layer& l : m.layers) {
        const int64_t in_width = width.at(l.input);
        if (l.op == "relu") {
            add_node(g, "Relu", l.name, {l.input}, {l.output});
        } else if (l.op == "softmax") {
            onnx::NodeProto* n = add_node(g, "Softmax", l.name, {l.input}, {l.output});
            int_attr(n, "axis", -1);
        } else {
            const tensor& w = m.at(l.weight);
            std::string x = l.input;
            if (l.input_quantization) {
                // Static 8-bit input quantization, exactly as shrink's runtime simulates it.
                add_float(g, l.name + ".input_scale", {}, {l.input_quantization->scale});
                add_typed(g, l.name + ".input_zero_point", onnx::TensorProto::UINT8, {},
                          std::vector<uint8_t>{uint8_t(l.input_quantization->zero_point)});
                add_node(g, "QuantizeLinear", l.name + ".quantize_input", {x, l.name + ".input_scale", l.name + ".input_zero_point"},
                         {l.name + ".input_q"});
                add_node(g, "DequantizeLinear", l.name + ".dequantize_input",
                         {l.name + ".input_q", l.name + ".input_scale", l.name + ".input_zero_point"}, {l.name + ".input_dq"});
                x = l.name + ".input_dq";
            }
            std::vector<std::string> inputs{x, weight_input(g, l, w)};
            if (!l.bias.empty()) {
                add_float(g, l.bias, m.at(l.bias).shape, m.at(l.bias).decode());
                inputs.push_back(l.bias);
            }
            onnx::NodeProto* gemm = add_node(g, "Gemm", l.name, inputs, {l.output});
            int_attr(gemm, "transB", 1);
            width[l.output] = w.shape[0];
            continue;
        }
        width[l.output] = in_width;
    }
    io(g->add_output(), m.output, width.at(m.output));
    std::string bytes;
    if (!proto.SerializeToString(&bytes)) throw std::runtime_error("cannot serialize the ONNX model");
    return bytes;
}

void save_onnx(const model& m, const std::filesystem::path& file) { write_file_atomic(file, export_onnx(m)); }

}  // namespace shrink::onnx_import
