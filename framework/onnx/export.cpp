#include "onnx/export.hpp"

#include "util/files.hpp"

#include <limits>
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

void ints_attr(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
}

void float_attr(onnx::NodeProto* n, const char* name, float v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
}

void io(onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& per_sample) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("batch");
    for (int64_t d : per_sample) t->mutable_shape()->add_dim()->set_dim_value(d);
}

void window_attrs(onnx::NodeProto* n, const layer& l) {
    const window& w = l.win;
    ints_attr(n, "kernel_shape", {w.kernel[0], w.kernel[1]});
    ints_attr(n, "strides", {w.strides[0], w.strides[1]});
    ints_attr(n, "pads", {w.pads[0], w.pads[1], w.pads[2], w.pads[3]});
}

/// The float weight an engine should see, or "" when the weight is exported as QDQ.
std::string weight_input(onnx::GraphProto* g, const layer& l, const tensor& w) {
    // A table encoding (nf4, kmeans) has no ONNX operator: its decoded floats go instead.
    const bool qdq = w.quant && w.quant->table.empty() && w.quant->bits == 8 && (w.quant->group_size == 0 || w.quant->group_size >= w.cols());
    if (!qdq) {
        add_float(g, l.weight, w.shape, w.decode());
        return l.weight;
    }
    // Pruned positions hold their zero point (model.hpp's canonical form): they dequantize to 0.
    add_typed(g, l.weight + ".q", onnx::TensorProto::INT8, w.shape, w.q.to_vector());
    const bool per_channel = w.quant->group_size != 0;
    const std::vector<int64_t> scale_shape = per_channel ? std::vector<int64_t>{w.shape[0]} : std::vector<int64_t>{};
    add_float(g, l.weight + ".scale", scale_shape, w.scales.to_vector());
    std::vector<int8_t> zeros = w.zero_points.empty() ? std::vector<int8_t>(w.scales.size(), 0) : w.zero_points.to_vector();
    add_typed(g, l.weight + ".zero_point", onnx::TensorProto::INT8, scale_shape, zeros);
    onnx::NodeProto* dq = add_node(g, "DequantizeLinear", l.name + ".dequantize_weight",
                                   {l.weight + ".q", l.weight + ".scale", l.weight + ".zero_point"}, {l.weight});
    if (per_channel) int_attr(dq, "axis", 0);
    return l.weight;
}

/// Opset 13 has no Gelu: the formulas as PyTorch writes them, which the importer matches.
void gelu(onnx::GraphProto* g, const layer& l) {
    const std::string& x = l.input;
    auto v = [&](const char* what) { return l.name + "." + what; };
    add_float(g, v("one"), {}, {1.0f});
    add_float(g, v("half"), {}, {0.5f});
    if (l.kind() == op_kind::gelu) {  // x * 0.5 * (1 + erf(x / sqrt(2)))
        add_float(g, v("root2"), {}, {1.41421356f});
        add_node(g, "Div", v("div"), {x, v("root2")}, {v("scaled")});
        add_node(g, "Erf", v("erf"), {v("scaled")}, {v("erf")});
        add_node(g, "Add", v("add"), {v("erf"), v("one")}, {v("plus")});
    } else {  // 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
        add_float(g, v("kappa"), {}, {0.044715f});
        add_float(g, v("beta"), {}, {0.7978845608f});
        add_node(g, "Mul", v("square"), {x, x}, {v("square")});
        add_node(g, "Mul", v("cube"), {x, v("square")}, {v("cube")});
        add_node(g, "Mul", v("cubic_term"), {v("kappa"), v("cube")}, {v("cubic_term")});
        add_node(g, "Add", v("inner_sum"), {x, v("cubic_term")}, {v("inner_sum")});
        add_node(g, "Mul", v("inner"), {v("beta"), v("inner_sum")}, {v("inner")});
        add_node(g, "Tanh", v("tanh"), {v("inner")}, {v("tanh")});
        add_node(g, "Add", v("add"), {v("one"), v("tanh")}, {v("plus")});
    }
    add_node(g, "Mul", v("mul"), {x, v("plus")}, {v("product")});
    add_node(g, "Mul", l.name, {v("product"), v("half")}, {l.output});
}

}  // namespace

std::string export_onnx(const model& m) {
    m.validate();
    const auto shapes = m.activation_shapes();
    onnx::ModelProto proto;
    proto.set_ir_version(7);
    proto.set_producer_name("shrink");
    proto.add_opset_import()->set_version(13);
    onnx::GraphProto* g = proto.mutable_graph();
    g->set_name("shrink");
    io(g->add_input(), m.input, shapes.at(m.input));
    for (const layer& l : m.layers) {
        const op_kind op = l.kind();
        switch (op) {
            case op_kind::relu:
            case op_kind::sigmoid:
            case op_kind::tanh:
            case op_kind::global_avg_pool:
            case op_kind::softmax:
            case op_kind::log_softmax: {
                onnx::NodeProto* n = add_node(g, op_of(op).onnx, l.name, {l.input}, {l.output});
                if (op == op_kind::softmax || op == op_kind::log_softmax) int_attr(n, "axis", -1);
                break;
            }
            case op_kind::leaky_relu: {
                float_attr(add_node(g, op_of(op).onnx, l.name, {l.input}, {l.output}), "alpha", l.alpha);
                break;
            }
            case op_kind::clip: {
                add_float(g, l.name + ".min", {}, {l.alpha});
                add_float(g, l.name + ".max", {}, {l.beta});
                add_node(g, op_of(op).onnx, l.name, {l.input, l.name + ".min", l.name + ".max"}, {l.output});
                break;
            }
            case op_kind::gelu:
            case op_kind::gelu_tanh: {
                gelu(g, l);
                break;
            }
            case op_kind::silu: {  // opset 13 has no Silu: x * Sigmoid(x)
                add_node(g, "Sigmoid", l.name + ".sigmoid", {l.input}, {l.name + ".gate"});
                add_node(g, "Mul", l.name, {l.input, l.name + ".gate"}, {l.output});
                break;
            }
            case op_kind::embedding:
            case op_kind::rms_norm:
            case op_kind::attention:
                throw std::runtime_error("layer '" + l.name + "': ONNX export does not write '" + l.op +
                                         "' yet (language models go to Hugging Face folders and GGUF: docs/language-models.md)");
            case op_kind::flatten: {
                int_attr(add_node(g, op_of(op).onnx, l.name, {l.input}, {l.output}), "axis", 1);
                break;
            }
            case op_kind::reshape: {
                std::vector<int64_t> target{0};  // 0: the batch, copied
                target.insert(target.end(), l.shape.begin(), l.shape.end());
                add_typed(g, l.name + ".shape", onnx::TensorProto::INT64, {int64_t(target.size())}, target);
                add_node(g, op_of(op).onnx, l.name, {l.input, l.name + ".shape"}, {l.output});
                break;
            }
            case op_kind::add:
            case op_kind::sub:
            case op_kind::mul:
            case op_kind::div: {
                // shrink aligns the second operand's per-sample shape to the right of the first's;
                // ONNX aligns whole shapes, batch included: give it the first's rank.
                const std::vector<int64_t>& a = shapes.at(l.input);
                const std::vector<int64_t>& b = shapes.at(l.more_inputs[0]);
                std::string operand = l.more_inputs[0];
                if (b.size() < a.size()) {
                    std::vector<int64_t> target(a.size() - b.size() + 1, 1);
                    target[0] = 0;
                    target.insert(target.end(), b.begin(), b.end());
                    add_typed(g, l.name + ".operand_shape", onnx::TensorProto::INT64, {int64_t(target.size())}, target);
                    operand = l.name + ".operand";
                    add_node(g, "Reshape", l.name + ".broadcast", {l.more_inputs[0], l.name + ".operand_shape"}, {operand});
                }
                add_node(g, op_of(op).onnx, l.name, {l.input, operand}, {l.output});
                break;
            }
            case op_kind::concat: {
                int_attr(add_node(g, op_of(op).onnx, l.name, l.inputs(), {l.output}), "axis", l.axis + 1);
                break;
            }
            case op_kind::max_pool:
            case op_kind::avg_pool: {
                onnx::NodeProto* n = add_node(g, op_of(op).onnx, l.name, {l.input}, {l.output});
                window_attrs(n, l);
                if (op == op_kind::avg_pool) int_attr(n, "count_include_pad", l.win.count_include_pad ? 1 : 0);
                break;
            }
            case op_kind::batchnorm: {
                // A per-channel scale and shift: normalization with mean 0, variance 1 and epsilon 0.
                const int64_t channels = m.at(l.weight).shape[0];
                add_float(g, l.weight, {channels}, m.at(l.weight).decode());
                add_float(g, l.bias, {channels}, m.at(l.bias).decode());
                add_float(g, l.name + ".mean", {channels}, std::vector<float>(size_t(channels), 0.0f));
                add_float(g, l.name + ".var", {channels}, std::vector<float>(size_t(channels), 1.0f));
                onnx::NodeProto* n = add_node(g, op_of(op).onnx, l.name, {l.input, l.weight, l.bias, l.name + ".mean", l.name + ".var"}, {l.output});
                float_attr(n, "epsilon", 0.0f);
                break;
            }
            case op_kind::linear:
            case op_kind::conv: {
                const tensor& w = m.at(l.weight);
                std::string x = l.input;
                if (l.input_quantization && l.input_quantization->per_token) {
                    // Per-token dynamic 8-bit quantization in standard ops, in the order of
                    // quantize_row_per_token (model.hpp), so ONNX Runtime rounds the same:
                    // s = max(ReduceMax(|x|), FLT_MIN) / 127; x = Clip(Round(x / s), -127, 127) * s.
                    const std::string p = l.name + ".input_";
                    add_float(g, p + "floor", {}, {std::numeric_limits<float>::min()});
                    add_float(g, p + "levels", {}, {127.0f});
                    add_float(g, p + "low", {}, {-127.0f});
                    add_float(g, p + "high", {}, {127.0f});
                    add_node(g, "Abs", p + "abs", {x}, {p + "abs"});
                    onnx::NodeProto* reduce = add_node(g, "ReduceMax", p + "absmax", {p + "abs"}, {p + "absmax"});
                    ints_attr(reduce, "axes", {-1});
                    int_attr(reduce, "keepdims", 1);
                    add_node(g, "Max", p + "absmax_floor", {p + "absmax", p + "floor"}, {p + "absmax_floor"});
                    add_node(g, "Div", p + "scale", {p + "absmax_floor", p + "levels"}, {p + "scale"});
                    add_node(g, "Div", p + "scaled", {x, p + "scale"}, {p + "scaled"});
                    add_node(g, "Round", p + "round", {p + "scaled"}, {p + "round"});
                    add_node(g, "Clip", p + "clip", {p + "round", p + "low", p + "high"}, {p + "q"});
                    add_node(g, "Mul", p + "dq", {p + "q", p + "scale"}, {p + "dq"});
                    x = p + "dq";
                } else if (l.input_quantization) {
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
                if (op == op_kind::linear) {
                    int_attr(add_node(g, op_of(op).onnx, l.name, inputs, {l.output}), "transB", 1);
                } else {
                    onnx::NodeProto* n = add_node(g, op_of(op).onnx, l.name, inputs, {l.output});
                    window_attrs(n, l);
                    ints_attr(n, "dilations", {l.win.dilations[0], l.win.dilations[1]});
                    int_attr(n, "group", l.win.group);
                }
                break;
            }
        }
    }
    io(g->add_output(), m.output, shapes.at(m.output));
    std::string bytes;
    if (!proto.SerializeToString(&bytes)) throw std::runtime_error("cannot serialize the ONNX model");
    return bytes;
}

void save_onnx(const model& m, const std::filesystem::path& file) { write_file_atomic(file, export_onnx(m)); }

}  // namespace shrink::onnx_import
