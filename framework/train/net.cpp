#include "train/net.hpp"

#include "train/ops.hpp"
#include "train/parallel.hpp"
#include "train/sequence_ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace shrink::train {

namespace {

int64_t product(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

ops::window_geometry geometry(const layer& l, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                              const tensor* weight) {
    ops::window_geometry g;
    g.c = in[0];
    g.h = in[1];
    g.w = in[2];
    g.oc = out[0];
    g.oh = out[1];
    g.ow = out[2];
    g.kh = weight ? weight->shape[2] : l.win.kernel[0];
    g.kw = weight ? weight->shape[3] : l.win.kernel[1];
    g.sh = l.win.strides[0];
    g.sw = l.win.strides[1];
    g.pad_top = l.win.pads[0];
    g.pad_left = l.win.pads[1];
    g.dh = weight ? l.win.dilations[0] : 1;
    g.dw = weight ? l.win.dilations[1] : 1;
    return g;
}

/// For each float of a sample of the first operand, the float of the second that a
/// right-aligned broadcast pairs it with.
std::vector<int64_t> broadcast_map(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    const int64_t n = product(a);
    std::vector<int64_t> map(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        int64_t rest = i, at = 0, stride = 1;
        for (size_t d = 0; d < a.size(); ++d) {
            const size_t ad = a.size() - 1 - d;
            const int64_t coord = rest % a[ad];
            rest /= a[ad];
            if (d < b.size()) {
                const int64_t bd = b[b.size() - 1 - d];
                if (bd != 1) at += coord * stride;
                stride *= bd;
            }
        }
        map[size_t(i)] = at;
    }
    return map;
}

}  // namespace

template <class T>
struct net<T>::impl {
    struct node {
        const layer* l = nullptr;
        op_kind op = op_kind::linear;  // l's
        std::vector<int> in;  // value ids, input then more_inputs
        int out = -1;
        int weight = -1, bias = -1;  // parameter indices
        std::vector<std::vector<int64_t>> in_shapes;
        std::vector<int64_t> out_shape;
        ops::window_geometry g;
        std::vector<int64_t> bmap;  // binary: broadcast map
        char binary = 0;            // binary: '+', '-', '*' or '/'
        // Kept from forward for backward.
        std::vector<T> col, xhat, inv_std, batch_mean, batch_var, running_mean, running_var;
        std::vector<int32_t> argmax;
        std::vector<T> quantized_input;  // a layer with input quantization reads this
        std::vector<T> rms_inv;                 // rms_norm: 1 / rms of each row
        ops::attention_state<T> attention;      // attention: rotated q, k and the softmax weights
        bool batch_stats_used = false;
    };

    model m;
    net_options o;
    std::vector<node> nodes;
    std::map<std::string, int> ids;
    std::vector<int64_t> widths;
    std::vector<std::vector<T>> vals, grads;
    std::vector<parameter<T>> params;
    std::map<std::string, int> param_of;
    int64_t rows = 0;
    std::string logits;

    int add_param(const std::string& name, bool decays) {
        if (name.empty()) return -1;
        if (auto it = param_of.find(name); it != param_of.end()) return it->second;
        const tensor& t = m.at(name);
        parameter<T> p;
        p.tensor = name;
        p.shape = t.shape;
        const std::vector<float> dense = t.decode();
        p.value.assign(dense.begin(), dense.end());
        p.grad.assign(p.value.size(), T(0));
        p.mask = t.mask.to_vector();
        p.decays = decays;
        p.frozen = t.quant.has_value();
        params.push_back(std::move(p));
        return param_of[name] = int(params.size() - 1);
    }

    const T* input_of(node& n) {
        return n.l->input_quantization ? n.quantized_input.data() : vals[size_t(n.in[0])].data();
    }

    void quantize_input(node& n) {
        const input_quant& q = *n.l->input_quantization;
        const std::vector<T>& x = vals[size_t(n.in[0])];
        n.quantized_input.resize(x.size());
        if (q.per_token) {
            // As the runtime's quantize_row_per_token, in T: each row its own scale.
            const int64_t width = product(n.in_shapes[0]);
            each(int64_t(x.size()) / width, [&](int64_t r) {
                const T* row = x.data() + r * width;
                T* out = n.quantized_input.data() + r * width;
                T absmax = 0;
                for (int64_t i = 0; i < width; ++i) absmax = std::max(absmax, T(std::fabs(row[i])));
                const T scale = std::max(absmax, T(std::numeric_limits<float>::min())) / T(127);
                for (int64_t i = 0; i < width; ++i) out[i] = std::clamp(T(std::nearbyint(row[i] / scale)), T(-127), T(127)) * scale;
            });
            return;
        }
        each(int64_t(x.size()), [&](int64_t i) {
            const double v = std::clamp(std::nearbyint(double(x[size_t(i)]) / q.scale) + q.zero_point, 0.0, 255.0);
            n.quantized_input[size_t(i)] = T(q.scale * (v - q.zero_point));
        });
    }

    /// Straight-through: the gradient passes where the input was inside the quantizer's range
    /// (everywhere, per token).
    void unquantize_grad(node& n, std::vector<T>& dq) {
        const input_quant& q = *n.l->input_quantization;
        if (q.per_token) {  // each row's range is its own extremes: nothing is clipped
            std::vector<T>& dx = grads[size_t(n.in[0])];
            each(int64_t(dx.size()), [&](int64_t i) { dx[size_t(i)] += dq[size_t(i)]; });
            return;
        }
        const double lo = q.scale * (0.0 - q.zero_point) - 0.5 * q.scale, hi = q.scale * (255.0 - q.zero_point) + 0.5 * q.scale;
        const std::vector<T>& x = vals[size_t(n.in[0])];
        std::vector<T>& dx = grads[size_t(n.in[0])];
        each(int64_t(x.size()), [&](int64_t i) {
            if (double(x[size_t(i)]) >= lo && double(x[size_t(i)]) <= hi) dx[size_t(i)] += dq[size_t(i)];
        });
    }

    /// A concat as pieces: per sample [outer, axis extent, inner], input k's `span` floats
    /// at in_at land at out_at. One sample per task.
    template <class F>
    void concat_pieces(const node& n, F&& f) {
        const auto& shape = n.out_shape;
        const int64_t axis = n.l->axis, width = product(shape);
        int64_t outer = 1, inner = 1;
        for (int64_t d = 0; d < axis; ++d) outer *= shape[size_t(d)];
        for (size_t d = size_t(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
        each(rows, [&](int64_t r) {
            for (int64_t o = 0; o < outer; ++o) {
                int64_t at = 0;
                for (size_t k = 0; k < n.in.size(); ++k) {
                    const int64_t span = n.in_shapes[k][size_t(axis)] * inner;
                    f(k, r * product(n.in_shapes[k]) + o * span, r * width + o * shape[size_t(axis)] * inner + at, span);
                    at += span;
                }
            }
        });
    }

    void forward_node(node& n, bool training);
    void backward_node(node& n);
};

template <class T>
net<T>::net(const model& source, const net_options& options) : p_(std::make_unique<impl>()) {
    impl& s = *p_;
    s.m = source;
    s.o = options;
    s.m.validate();
    const auto shapes = s.m.activation_shapes();
    auto id_of = [&](const std::string& name) {
        if (auto it = s.ids.find(name); it != s.ids.end()) return it->second;
        s.ids[name] = int(s.widths.size());
        s.widths.push_back(product(shapes.at(name)));
        return int(s.widths.size() - 1);
    };
    id_of(s.m.input);
    s.nodes.reserve(s.m.layers.size());
    for (const layer& l : s.m.layers) {
        typename impl::node n;
        n.l = &l;
        for (const std::string& in : l.inputs()) {
            n.in.push_back(id_of(in));
            n.in_shapes.push_back(shapes.at(in));
        }
        n.out = id_of(l.output);
        n.out_shape = shapes.at(l.output);
        n.op = l.kind();
        if (n.op == op_kind::conv) {
            if (l.win.group != 1) throw std::runtime_error("layer '" + l.name + "': training supports group 1 convolutions only");
            n.g = geometry(l, n.in_shapes[0], n.out_shape, &s.m.at(l.weight));
        } else if (n.op == op_kind::max_pool || n.op == op_kind::avg_pool) {
            n.g = geometry(l, n.in_shapes[0], n.out_shape, nullptr);
        } else if (n.op == op_kind::global_avg_pool) {
            const auto& in = n.in_shapes[0];
            n.g.c = n.g.oc = in[0];
            n.g.h = n.g.kh = in[1];
            n.g.w = n.g.kw = in[2];
        } else if (op_of(n.op).has(OP_BINARY)) {
            n.bmap = broadcast_map(n.in_shapes[0], n.in_shapes[1]);
            n.binary = n.op == op_kind::add ? '+' : n.op == op_kind::sub ? '-' : n.op == op_kind::mul ? '*' : '/';
        }
        if (op_of(n.op).has(OP_MATRIX)) {
            n.weight = s.add_param(l.weight, true);
            n.bias = s.add_param(l.bias, false);
        } else if (n.op == op_kind::embedding || n.op == op_kind::rms_norm) {
            n.weight = s.add_param(l.weight, false);  // no weight decay on embeddings and norms
        } else if (n.op == op_kind::batchnorm) {
            n.weight = s.add_param(l.weight, false);
            n.bias = s.add_param(l.bias, false);
            n.running_mean.assign(size_t(n.in_shapes[0][0]), T(0));
            n.running_var.assign(size_t(n.in_shapes[0][0]), T(1));
        }
        s.nodes.push_back(std::move(n));
    }
    s.logits = s.m.output;
    for (const layer& l : s.m.layers)
        if (l.output == s.m.output && (l.kind() == op_kind::softmax || l.kind() == op_kind::log_softmax)) s.logits = l.input;
    s.vals.resize(s.widths.size());
    s.grads.resize(s.widths.size());
}

template <class T>
net<T>::~net() = default;
template <class T>
net<T>::net(net&&) noexcept = default;

template <class T>
void net<T>::impl::forward_node(node& n, bool training) {
    const layer& l = *n.l;
    const int64_t out_width = product(n.out_shape);
    std::vector<T>& y = vals[size_t(n.out)];
    y.resize(size_t(rows * out_width));  // every op writes all of it
    const std::vector<T>& x0 = vals[size_t(n.in[0])];
    const T* bias = n.bias >= 0 ? params[size_t(n.bias)].read().data() : nullptr;
    if (l.input_quantization) quantize_input(n);
    switch (n.op) {
        case op_kind::linear: {
            ops::linear_forward(input_of(n), rows, n.in_shapes[0][0], out_width, params[size_t(n.weight)].read().data(), bias,
                                y.data());
            break;
        }
        case op_kind::conv: {
            ops::conv_forward(input_of(n), rows, n.g, params[size_t(n.weight)].read().data(), bias, n.col, y.data());
            break;
        }
        case op_kind::max_pool: {
            ops::max_pool_forward(x0.data(), rows, n.g, y.data(), n.argmax);
            break;
        }
        case op_kind::avg_pool:
        case op_kind::global_avg_pool: {
            ops::avg_pool_forward(x0.data(), rows, n.g, l.win.count_include_pad, y.data());
            break;
        }
        case op_kind::batchnorm: {
            const int64_t c = n.in_shapes[0][0], plane = product(n.in_shapes[0]) / c;
            const T* scale = params[size_t(n.weight)].read().data();
            n.batch_stats_used = o.batch_statistics && training;
            if (n.batch_stats_used) {
                ops::batchnorm_batch_forward(x0.data(), rows, c, plane, scale, bias, o.batchnorm_epsilon, y.data(), n.xhat,
                                             n.inv_std, n.batch_mean, n.batch_var);
                const T mom = T(o.batchnorm_momentum);
                const double unbias = rows * plane > 1 ? double(rows * plane) / double(rows * plane - 1) : 1.0;
                for (int64_t i = 0; i < c; ++i) {
                    n.running_mean[size_t(i)] = (1 - mom) * n.running_mean[size_t(i)] + mom * n.batch_mean[size_t(i)];
                    n.running_var[size_t(i)] = (1 - mom) * n.running_var[size_t(i)] + mom * T(unbias) * n.batch_var[size_t(i)];
                }
            } else if (o.batch_statistics) {
                // Inference with running statistics: the folded form write_to() produces.
                std::vector<T> sc(static_cast<size_t>(c)), sh(static_cast<size_t>(c));
                for (int64_t i = 0; i < c; ++i) {
                    const T inv = T(1.0 / std::sqrt(double(n.running_var[size_t(i)]) + o.batchnorm_epsilon));
                    sc[size_t(i)] = scale[i] * inv;
                    sh[size_t(i)] = bias[i] - n.running_mean[size_t(i)] * scale[i] * inv;
                }
                ops::affine_forward(x0.data(), rows, c, plane, sc.data(), sh.data(), y.data());
            } else {
                ops::affine_forward(x0.data(), rows, c, plane, scale, bias, y.data());
            }
            break;
        }
        case op_kind::softmax:
        case op_kind::log_softmax: {
            ops::softmax_forward(x0.data(), rows, out_width, n.op == op_kind::log_softmax, y.data());
            break;
        }
        case op_kind::flatten:
        case op_kind::reshape: {
            std::copy(x0.begin(), x0.end(), y.begin());
            break;
        }
        case op_kind::add:
        case op_kind::sub:
        case op_kind::mul:
        case op_kind::div: {
            const std::vector<T>& b = vals[size_t(n.in[1])];
            const int64_t bw = product(n.in_shapes[1]);
            const char op = n.binary;
            each(rows, [&](int64_t r) {
                for (int64_t i = 0; i < out_width; ++i) {
                    const T a = x0[size_t(r * out_width + i)], v = b[size_t(r * bw + n.bmap[size_t(i)])];
                    y[size_t(r * out_width + i)] = op == '+' ? a + v : op == '-' ? a - v : op == '*' ? a * v : a / v;
                }
            });
            break;
        }
        case op_kind::concat: {
            concat_pieces(n, [&](size_t k, int64_t in_at, int64_t out_at, int64_t span) {
                std::copy_n(vals[size_t(n.in[k])].data() + in_at, span, y.data() + out_at);
            });
            break;
        }
        case op_kind::relu:
        case op_kind::leaky_relu:
        case op_kind::sigmoid:
        case op_kind::tanh:
        case op_kind::gelu:
        case op_kind::gelu_tanh:
        case op_kind::clip:
        case op_kind::silu: {
            ops::activation_forward(n.op, l.alpha, l.beta, x0.data(), rows * out_width, y.data());
            break;
        }
        case op_kind::embedding: {
            const parameter<T>& table = params[size_t(n.weight)];
            ops::embedding_forward(x0.data(), rows, table.read().data(), table.shape[0], out_width, y.data());
            break;
        }
        case op_kind::rms_norm: {
            ops::rms_norm_forward(x0.data(), rows, out_width, params[size_t(n.weight)].read().data(), l.alpha, y.data(), n.rms_inv);
            break;
        }
        case op_kind::attention: {
            ops::attention_forward(x0.data(), vals[size_t(n.in[1])].data(), vals[size_t(n.in[2])].data(), vals[size_t(n.in[3])].data(),
                                   rows, l.attn, y.data(), n.attention);
            break;
        }
    }
}

template <class T>
void net<T>::impl::backward_node(node& n) {
    const layer& l = *n.l;
    const std::vector<T>& dy = grads[size_t(n.out)];
    const std::vector<T>& x0 = vals[size_t(n.in[0])];
    const int64_t out_width = product(n.out_shape);
    T* dx = grads[size_t(n.in[0])].data();
    // A quantized input's gradient is collected here, then passed straight through.
    std::vector<T> dq;
    if (l.input_quantization) {
        dq.assign(x0.size(), T(0));
        dx = dq.data();
    }
    T* dbias = n.bias >= 0 ? params[size_t(n.bias)].grad.data() : nullptr;
    switch (n.op) {
        case op_kind::linear: {
            parameter<T>& w = params[size_t(n.weight)];
            ops::linear_backward(dy.data(), input_of(n), rows, n.in_shapes[0][0], out_width, w.read().data(), w.grad.data(),
                                 dbias, dx);
            break;
        }
        case op_kind::conv: {
            parameter<T>& w = params[size_t(n.weight)];
            ops::conv_backward(dy.data(), rows, n.g, w.read().data(), n.col, w.grad.data(), dbias, dx);
            break;
        }
        case op_kind::max_pool: {
            ops::max_pool_backward(dy.data(), rows, n.g, n.argmax, dx);
            break;
        }
        case op_kind::avg_pool:
        case op_kind::global_avg_pool: {
            ops::avg_pool_backward(dy.data(), rows, n.g, l.win.count_include_pad, dx);
            break;
        }
        case op_kind::batchnorm: {
            const int64_t c = n.in_shapes[0][0], plane = product(n.in_shapes[0]) / c;
            parameter<T>& scale = params[size_t(n.weight)];
            if (n.batch_stats_used)
                ops::batchnorm_batch_backward(dy.data(), rows, c, plane, scale.read().data(), n.xhat, n.inv_std, dx,
                                              scale.grad.data(), dbias);
            else if (o.batch_statistics)
                throw std::logic_error("backward through a batchnorm run on running statistics");
            else
                ops::affine_backward(dy.data(), x0.data(), rows, c, plane, scale.read().data(), dx, scale.grad.data(), dbias);
            break;
        }
        case op_kind::softmax:
        case op_kind::log_softmax: {
            ops::softmax_backward(vals[size_t(n.out)].data(), dy.data(), rows, out_width, n.op == op_kind::log_softmax, dx);
            break;
        }
        case op_kind::flatten:
        case op_kind::reshape: {
            each(int64_t(dy.size()), [&](int64_t i) { dx[i] += dy[size_t(i)]; });
            break;
        }
        case op_kind::add:
        case op_kind::sub:
        case op_kind::mul:
        case op_kind::div: {
            const std::vector<T>& b = vals[size_t(n.in[1])];
            T* db = grads[size_t(n.in[1])].data();
            const int64_t bw = product(n.in_shapes[1]);
            const char op = n.binary;
            // One sample per task: its share of the broadcast operand's gradient is its own.
            each(rows, [&](int64_t r) {
                for (int64_t i = 0; i < out_width; ++i) {
                    const size_t ai = size_t(r * out_width + i), bi = size_t(r * bw + n.bmap[size_t(i)]);
                    const T g = dy[ai], a = x0[ai], v = b[bi];
                    dx[ai] += op == '+' || op == '-' ? g : op == '*' ? g * v : g / v;
                    db[bi] += op == '+' ? g : op == '-' ? -g : op == '*' ? g * a : -g * a / (v * v);
                }
            });
            break;
        }
        case op_kind::concat: {
            concat_pieces(n, [&](size_t k, int64_t in_at, int64_t out_at, int64_t span) {
                T* dst = grads[size_t(n.in[k])].data() + in_at;
                for (int64_t i = 0; i < span; ++i) dst[i] += dy[size_t(out_at + i)];
            });
            break;
        }
        case op_kind::relu:
        case op_kind::leaky_relu:
        case op_kind::sigmoid:
        case op_kind::tanh:
        case op_kind::gelu:
        case op_kind::gelu_tanh:
        case op_kind::clip:
        case op_kind::silu: {
            ops::activation_backward(n.op, l.alpha, l.beta, x0.data(), vals[size_t(n.out)].data(), dy.data(),
                                     rows * out_width, dx);
            break;
        }
        case op_kind::embedding: {
            // The tokens are the model's input: no gradient flows to them.
            ops::embedding_backward(dy.data(), x0.data(), rows, out_width, params[size_t(n.weight)].grad.data());
            break;
        }
        case op_kind::rms_norm: {
            parameter<T>& w = params[size_t(n.weight)];
            ops::rms_norm_backward(dy.data(), x0.data(), rows, out_width, w.read().data(), n.rms_inv, dx, w.grad.data());
            break;
        }
        case op_kind::attention: {
            ops::attention_backward(dy.data(), vals[size_t(n.in[2])].data(), rows, l.attn, n.attention, dx,
                                    grads[size_t(n.in[1])].data(), grads[size_t(n.in[2])].data());
            break;
        }
    }
    if (l.input_quantization) unquantize_grad(n, dq);
}

template <class T>
void net<T>::forward(const T* x, int64_t rows, bool training) {
    impl& s = *p_;
    s.rows = rows;
    std::vector<T>& in = s.vals[size_t(s.ids.at(s.m.input))];
    in.assign(x, x + rows * s.widths[size_t(s.ids.at(s.m.input))]);
    for (auto& n : s.nodes) s.forward_node(n, training);
    for (size_t v = 0; v < s.vals.size(); ++v) s.grads[v].assign(s.vals[v].size(), T(0));
}

template <class T>
void net<T>::backward() {
    impl& s = *p_;
    // Layers after the logits (a final softmax) take no part: the loss was taken before them.
    bool past_logits = s.logits != s.m.output;
    for (auto it = s.nodes.rbegin(); it != s.nodes.rend(); ++it) {
        if (past_logits) {
            past_logits = it->l->input != s.logits;
            continue;
        }
        s.backward_node(*it);
    }
    for (parameter<T>& p : s.params)
        if (!p.mask.empty())
            for (size_t i = 0; i < p.grad.size(); ++i)
                if (!p.mask[i]) p.grad[i] = T(0);
}

template <class T>
void net<T>::zero_grad() {
    for (parameter<T>& p : p_->params) std::fill(p.grad.begin(), p.grad.end(), T(0));
}

template <class T>
const std::string& net<T>::logits() const {
    return p_->logits;
}

template <class T>
int64_t net<T>::width(const std::string& v) const {
    auto it = p_->ids.find(v);
    if (it == p_->ids.end()) throw std::runtime_error("the model has no value '" + v + "'");
    return p_->widths[size_t(it->second)];
}

template <class T>
bool net<T>::has_value(const std::string& v) const {
    return p_->ids.count(v) != 0;
}

template <class T>
const std::vector<T>& net<T>::value(const std::string& v) const {
    width(v);
    return p_->vals[size_t(p_->ids.at(v))];
}

template <class T>
std::vector<T>& net<T>::grad(const std::string& v) {
    width(v);
    return p_->grads[size_t(p_->ids.at(v))];
}

template <class T>
std::vector<parameter<T>>& net<T>::parameters() {
    return p_->params;
}

template <class T>
const std::vector<parameter<T>>& net<T>::parameters() const {
    return p_->params;
}

template <class T>
void net<T>::write_to(model& out) const {
    const impl& s = *p_;
    for (const parameter<T>& p : s.params) {
        if (p.frozen) continue;
        tensor& t = out.at(p.tensor);
        tensor fresh;
        fresh.shape = p.shape;
        fresh.values.assign(p.value.begin(), p.value.end());
        fresh.mask = p.mask;
        t = std::move(fresh);
    }
    if (!s.o.batch_statistics) return;
    for (const auto& n : s.nodes) {
        if (n.op != op_kind::batchnorm) continue;
        tensor& scale_tensor = out.at(n.l->weight);
        float* scale = scale_tensor.values.write();
        float* shift = out.at(n.l->bias).values.write();
        for (size_t c = 0; c < scale_tensor.values.size(); ++c) {
            const double inv = 1.0 / std::sqrt(double(n.running_var[c]) + s.o.batchnorm_epsilon);
            shift[c] = float(double(shift[c]) - double(n.running_mean[c]) * double(scale[c]) * inv);
            scale[c] = float(double(scale[c]) * inv);
        }
    }
}

template class net<float>;
template class net<double>;

}  // namespace shrink::train
