// The CUDA runtime: the model's steps as cuBLAS products and our own kernels
// (cuda/kernels.cu). Weights are decoded once, on the device: quantized codes,
// scales and zero points travel and are dequantized there; a sparse weight runs dense
// with its pruned entries zero, as on the CPU. A conv is im2col plus one strided batched
// product per group, written straight into NCHW; its bias, a batchnorm that follows it
// and an activation after that run as one epilogue kernel, as do a linear's. A decoder's
// embedding, RMSNorm and attention (rotary, grouped-query, causal per window) are our
// kernels (cuda/decoder_kernels.cu); its token input is checked on the host first.
#include "cuda/cuda.hpp"
#include "cuda/context.hpp"
#include "cuda/decoder_kernels.hpp"
#include "cuda/kernels.hpp"
#include "cuda/math_libraries.hpp"
#include "backend/fusion.hpp"
#include "backend/tokens.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <map>
#include <stdexcept>

namespace shrink {

namespace {

/// The product of shape[from, to).
int64_t volume(const std::vector<int64_t>& shape, size_t from = 0, size_t to = SIZE_MAX) {
    to = std::min(to, shape.size());
    return std::accumulate(shape.begin() + int64_t(std::min(from, to)), shape.begin() + int64_t(to), int64_t(1), std::multiplies<>());
}

/// The activation a layer applies, or none for every other op.
gpu::act act_of(op_kind op, float alpha = 0, float beta = 0) {
    switch (op) {
        case op_kind::relu: return {gpu::act::relu, alpha, beta};
        case op_kind::leaky_relu: return {gpu::act::leaky_relu, alpha, beta};
        case op_kind::sigmoid: return {gpu::act::sigmoid, alpha, beta};
        case op_kind::tanh: return {gpu::act::tanh, alpha, beta};
        case op_kind::gelu: return {gpu::act::gelu, alpha, beta};
        case op_kind::gelu_tanh: return {gpu::act::gelu_tanh, alpha, beta};
        case op_kind::clip: return {gpu::act::clip, alpha, beta};
        case op_kind::silu: return {gpu::act::silu, alpha, beta};
        default: return gpu::act{};  // no activation
    }
}

gpu::act act_of(const layer& l) { return act_of(l.kind(), l.alpha, l.beta); }

bool is_activation(op_kind op) { return act_of(op).k != gpu::act::none; }

/// A tensor's dense floats on the device, decoded there when quantized.
gpu::buffer<float> device_floats(gpu::context& c, const tensor& t) {
    const uint64_t n = t.element_count();
    gpu::buffer<float> out(c, n);
    if (!t.quant || !t.quant->table.empty()) {  // a table encoding is decoded here
        const std::vector<float> dense = t.decode();  // pruned entries are zero already; the mask is applied anyway
        c.upload(out.data(), dense.data(), n * sizeof(float));
        return out;
    }
    gpu::buffer<int8_t> q(c, n), zeros(c, t.zero_points.size());
    gpu::buffer<float> scales(c, t.scales.size());
    gpu::buffer<uint8_t> mask(c, t.mask.size());
    c.upload(q.data(), t.q.data(), n);
    c.upload(scales.data(), t.scales.data(), t.scales.size() * sizeof(float));
    if (!t.zero_points.empty()) c.upload(zeros.data(), t.zero_points.data(), t.zero_points.size());
    if (!t.mask.empty()) c.upload(mask.data(), t.mask.data(), t.mask.size());
    gpu::dequantize(q.data(), scales.data(), zeros.data(), mask.data(), n, t.cols(), t.quant->group_size, out.data(), c.stream());
    c.synchronize();  // the codes' buffers go when this returns
    return out;
}

class cuda_runner final : public runner {
  public:
    cuda_runner(const model& m, int ordinal) : c_(gpu::context::get(ordinal)) {
        m.validate();
        const auto shapes = m.activation_shapes();
        const fusion_rule fuse(m);
        value_floats_.push_back(m.input_features);
        values_[m.input] = 0;
        for (size_t i = 0; i < m.layers.size(); ++i) {
            const layer& l = m.layers[i];
            const op_kind op = l.kind();
            if (op_of(op).has(OP_SAME_FLOATS)) {  // flatten, reshape: a view
                values_[l.output] = values_.at(l.input);
                continue;
            }
            step s;
            s.l = &l;
            s.op = op;
            for (const std::string& in : l.inputs()) {
                s.inputs.push_back(values_.at(in));
                s.in_shapes.push_back(shapes.at(in));
            }
            std::string produced = l.output;
            if (op == op_kind::linear || op == op_kind::conv) {
                s.weight = device_floats(c_, m.at(l.weight));
                if (!l.bias.empty()) s.bias = device_floats(c_, m.at(l.bias));
                s.channels = m.at(l.weight).shape[0];
                if (op == op_kind::conv && fuse.absorbable(i + 1, produced) && m.layers[i + 1].kind() == op_kind::batchnorm) {
                    const layer& bn = m.layers[++i];
                    s.bn_scale = device_floats(c_, m.at(bn.weight));
                    s.bn_shift = device_floats(c_, m.at(bn.bias));
                    produced = bn.output;
                }
                if (fuse.absorbable(i + 1, produced) && is_activation(m.layers[i + 1].kind())) {
                    s.post = act_of(m.layers[++i]);
                    produced = m.layers[i].output;
                }
            } else if (op == op_kind::batchnorm) {
                s.bn_scale = device_floats(c_, m.at(l.weight));
                s.bn_shift = device_floats(c_, m.at(l.bias));
            } else if (op == op_kind::embedding || op == op_kind::rms_norm) {
                s.weight = device_floats(c_, m.at(l.weight));  // the table; the norm's scale
                if (op == op_kind::embedding) vocab_ = m.at(l.weight).shape[0];
            } else if (op == op_kind::attention) {
                tokens_ = true;
                rotated_floats_ = std::max(rotated_floats_, volume(s.in_shapes[0]) + volume(s.in_shapes[1]));
            }
            if (op_of(op).has(OP_BINARY) && std::max(s.in_shapes[0].size(), s.in_shapes[1].size()) > 4)
                throw std::runtime_error("layer '" + l.name + "': the CUDA runtime broadcasts at most 4 dimensions per sample");
            s.out_shape = shapes.at(produced);
            s.output = int(value_floats_.size());
            value_floats_.push_back(volume(s.out_shape));
            values_[produced] = s.output;
            if (op == op_kind::conv) col_floats_ = std::max(col_floats_, volume(s.in_shapes[0], 0, 1) * l.win.kernel[0] * l.win.kernel[1] *
                                                                        volume(s.out_shape, 1));
            steps_.push_back(std::move(s));
        }
        output_value_ = values_.at(m.output);
        output_width_ = value_floats_[size_t(output_value_)];
    }

    int64_t output_width() const override { return output_width_; }

    std::vector<float> run(const float* input, int64_t rows, const layer_input_fn& on_layer_input) const override {
        gpu::check(cudaSetDevice(c_.ordinal()), "cudaSetDevice");
        if (rows <= 0) return {};
        int64_t longest = 0;  // a window's most tokens
        if (vocab_) check_token_ids(input, rows, vocab_);
        if (tokens_)
            for (int64_t p : token_positions(input, rows)) longest = std::max(longest, p + 1);
        reserve(rows);
        c_.upload(buffers_[0].data(), input, size_t(rows * value_floats_[0]) * sizeof(float));
        longest_ = longest;
        for (const step& s : steps_) run_step(s, rows, on_layer_input);
        std::vector<float> out(size_t(rows * output_width_));
        c_.download(out.data(), buffers_[size_t(output_value_)].data(), out.size() * sizeof(float));
        return out;
    }

  private:
    struct step {
        const layer* l = nullptr;
        op_kind op = op_kind::linear;  // l's, looked up once: run_step runs per batch
        std::vector<int> inputs;
        std::vector<std::vector<int64_t>> in_shapes;  // per sample
        std::vector<int64_t> out_shape;
        int output = 0;
        int64_t channels = 0;  // linear, conv: output features or channels
        gpu::buffer<float> weight, bias, bn_scale, bn_shift;
        gpu::act post;
    };

    void reserve(int64_t rows) const {
        if (rows <= reserved_rows_) return;
        buffers_.clear();
        for (int64_t floats : value_floats_) buffers_.emplace_back(c_, size_t(rows * floats));
        quantized_ = gpu::buffer<float>(c_, size_t(rows * *std::max_element(value_floats_.begin(), value_floats_.end())));
        col_ = gpu::buffer<float>(c_, size_t(std::min(rows, col_chunk(rows)) * col_floats_));
        rotated_ = gpu::buffer<float>(c_, size_t(rows * rotated_floats_));
        reserved_rows_ = rows;
    }

    // Samples per im2col pass: the whole batch unless its matrix passes 64 Mi floats.
    int64_t col_chunk(int64_t rows) const {
        return col_floats_ ? std::max<int64_t>(1, std::min(rows, (int64_t(64) << 20) / col_floats_)) : rows;
    }

    void run_step(const step& s, int64_t rows, const layer_input_fn& on_layer_input) const {
        const layer& l = *s.l;
        cudaStream_t stream = c_.stream();
        const float* in = buffers_[size_t(s.inputs[0])].data();
        float* out = buffers_[size_t(s.output)].data();
        const int64_t in_size = volume(s.in_shapes[0]);
        const op_kind op = s.op;
        if (op == op_kind::linear || op == op_kind::conv) {
            if (l.input_quantization) {
                if (l.input_quantization->per_token)
                    gpu::fake_quantize_rows(in, quantized_.data(), rows, in_size, stream);
                else
                    gpu::fake_quantize(in, quantized_.data(), rows * in_size, l.input_quantization->scale, l.input_quantization->zero_point, stream);
                in = quantized_.data();
            }
            if (on_layer_input) {
                std::vector<float> host(size_t(rows * in_size));
                c_.download(host.data(), in, host.size() * sizeof(float));
                on_layer_input(l.name, host.data(), rows, in_size);
            }
            const float one = 1.0f, zero = 0.0f;
            if (op == op_kind::linear) {
                gpu::check(gpu::cublas().sgemm(c_.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, int(s.channels), int(rows), int(in_size), &one, s.weight.data(),
                                       int(in_size), in, int(in_size), &zero, out, int(s.channels)),
                           "linear product");
                gpu::channel_epilogue(out, rows, s.channels, 1, s.bias.data(), nullptr, nullptr, s.post, stream);
                return;
            }
            const gpu::window2d w = window_of(l, s, rows);
            const int64_t spatial = w.out_h * w.out_w, k_all = w.in_c * w.kh * w.kw, groups = l.win.group;
            const int64_t k_group = k_all / groups, out_group = s.channels / groups, chunk = col_chunk(rows);
            for (int64_t first = 0; first < rows; first += chunk) {
                gpu::window2d part = w;
                part.batch = std::min(chunk, rows - first);
                gpu::im2col(in + first * in_size, part, col_.data(), stream);
                for (int64_t g = 0; g < groups; ++g)
                    gpu::check(gpu::cublas().sgemm_strided_batched(c_.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, int(spatial), int(out_group), int(k_group), &one,
                                                         col_.data() + g * k_group * spatial, int(spatial), k_all * spatial,
                                                         s.weight.data() + g * out_group * k_group, int(k_group), 0, &zero,
                                                         out + first * s.channels * spatial + g * out_group * spatial, int(spatial),
                                                         s.channels * spatial, int(part.batch)),
                               "convolution product");
            }
            gpu::channel_epilogue(out, rows, s.channels, spatial, s.bias.data(), s.bn_scale.data(), s.bn_shift.data(), s.post, stream);
            return;
        }
        switch (op) {
            case op_kind::batchnorm:
                cudaMemcpyAsync(out, in, size_t(rows * in_size) * sizeof(float), cudaMemcpyDeviceToDevice, stream);
                gpu::channel_epilogue(out, rows, s.in_shapes[0][0], volume(s.in_shapes[0], 1), nullptr, s.bn_scale.data(),
                                      s.bn_shift.data(), gpu::act{}, stream);
                return;
            case op_kind::relu:
            case op_kind::leaky_relu:
            case op_kind::sigmoid:
            case op_kind::tanh:
            case op_kind::gelu:
            case op_kind::gelu_tanh:
            case op_kind::clip: gpu::activation(in, out, rows * in_size, act_of(op, l.alpha, l.beta), stream); return;
            case op_kind::softmax:
            case op_kind::log_softmax: gpu::softmax(in, out, rows, in_size, op == op_kind::log_softmax, stream); return;
            case op_kind::max_pool:
            case op_kind::avg_pool:
            case op_kind::global_avg_pool: {
                const gpu::pool_kind k = op == op_kind::max_pool                             ? gpu::pool_kind::max
                                         : op == op_kind::avg_pool && l.win.count_include_pad ? gpu::pool_kind::average_with_pad
                                                                                             : gpu::pool_kind::average;
                gpu::pool(in, window_of(l, s, rows), k, out, stream);
                return;
            }
            case op_kind::add:
            case op_kind::sub:
            case op_kind::mul:
            case op_kind::div: run_binary(s, rows, in, out); return;
            case op_kind::concat: run_concat(s, rows, out); return;
            case op_kind::linear:
            case op_kind::conv:  // above
            case op_kind::flatten:
            case op_kind::reshape: return;  // views: no step
            case op_kind::silu: gpu::activation(in, out, rows * in_size, act_of(op), stream); return;
            case op_kind::embedding: gpu::embedding(in, rows, s.weight.data(), volume(s.out_shape), out, stream); return;
            case op_kind::rms_norm: gpu::rms_norm(in, rows, in_size, s.weight.data(), l.alpha, out, stream); return;
            case op_kind::attention: run_attention(s, rows, out); return;
        }
    }

    gpu::window2d window_of(const layer& l, const step& s, int64_t rows) const {
        const auto& in = s.in_shapes[0];
        const auto& out = s.out_shape;
        gpu::window2d w{};
        w.batch = rows;
        w.in_c = in[0], w.in_h = in.size() > 1 ? in[1] : 1, w.in_w = in.size() > 2 ? in[2] : 1;
        w.out_c = out[0], w.out_h = out.size() > 1 ? out[1] : 1, w.out_w = out.size() > 2 ? out[2] : 1;
        const bool global = s.op == op_kind::global_avg_pool;
        w.kh = global ? w.in_h : l.win.kernel[0];
        w.kw = global ? w.in_w : l.win.kernel[1];
        w.stride_h = global ? 1 : l.win.strides[0];
        w.stride_w = global ? 1 : l.win.strides[1];
        w.pad_top = global ? 0 : l.win.pads[0];
        w.pad_left = global ? 0 : l.win.pads[1];
        w.dil_h = global ? 1 : l.win.dilations[0];
        w.dil_w = global ? 1 : l.win.dilations[1];
        return w;
    }

    void run_binary(const step& s, int64_t rows, const float* a, float* out) const {
        const auto& as = s.in_shapes[0];
        const auto& bs = s.in_shapes[1];
        int64_t dims[4] = {1, 1, 1, 1}, strides[4] = {0, 0, 0, 0};
        for (size_t k = 0; k < as.size(); ++k) dims[4 - as.size() + k] = as[k];
        int64_t stride = 1;
        for (size_t k = bs.size(); k-- > 0;) {
            strides[4 - bs.size() + k] = bs[k] == 1 ? 0 : stride;
            stride *= bs[k];
        }
        const op_kind op = s.op;
        const int code = op == op_kind::add ? 0 : op == op_kind::sub ? 1 : op == op_kind::mul ? 2 : 3;  // gpu::binary's; div is 3
        gpu::binary(a, buffers_[size_t(s.inputs[1])].data(), out, rows, dims, strides, volume(bs), code, c_.stream());
    }

    // Rotates copies of q and k (the values stay as other layers read them), then attends.
    void run_attention(const step& s, int64_t rows, float* out) const {
        const attention_spec& a = s.l->attn;
        const int64_t q_floats = rows * a.heads * a.head_dim, k_floats = rows * a.kv_heads * a.head_dim;
        const float* tokens = buffers_[size_t(s.inputs[3])].data();
        float* qr = rotated_.data();
        float* kr = qr + q_floats;
        cudaStream_t stream = c_.stream();
        gpu::check(cudaMemcpyAsync(qr, buffers_[size_t(s.inputs[0])].data(), size_t(q_floats) * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                   "attention query copy");
        gpu::check(cudaMemcpyAsync(kr, buffers_[size_t(s.inputs[1])].data(), size_t(k_floats) * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                   "attention key copy");
        gpu::rotate_heads(qr, tokens, rows, a.heads, a.head_dim, a.rope_theta, stream);
        gpu::rotate_heads(kr, tokens, rows, a.kv_heads, a.head_dim, a.rope_theta, stream);
        gpu::attend(qr, kr, buffers_[size_t(s.inputs[2])].data(), tokens, rows, a.heads, a.kv_heads, a.head_dim, longest_, out, stream);
    }

    void run_concat(const step& s, int64_t rows, float* out) const {
        const size_t axis = size_t(s.l->axis);
        const int64_t outer = rows * volume(s.out_shape, 0, axis), out_inner = volume(s.out_shape, axis);
        int64_t offset = 0;
        for (size_t i = 0; i < s.inputs.size(); ++i) {
            const int64_t inner = volume(s.in_shapes[i], axis);
            gpu::check(cudaMemcpy2DAsync(out + offset, size_t(out_inner) * sizeof(float), buffers_[size_t(s.inputs[i])].data(),
                                         size_t(inner) * sizeof(float), size_t(inner) * sizeof(float), size_t(outer),
                                         cudaMemcpyDeviceToDevice, c_.stream()),
                       "concat copy");
            offset += inner;
        }
    }

    gpu::context& c_;
    std::vector<step> steps_;
    std::map<std::string, int> values_;  // activation name -> value (flatten and reshape alias their input)
    std::vector<int64_t> value_floats_;  // per sample
    int output_value_ = 0;
    int64_t output_width_ = 0;
    int64_t col_floats_ = 0;             // the largest conv's im2col matrix, per sample
    int64_t vocab_ = 0;                  // a decoder's embedding rows: its input's ids are checked
    bool tokens_ = false;                // attention: the input's positions are checked
    int64_t rotated_floats_ = 0;         // the widest attention's q and k, per token
    mutable int64_t longest_ = 0;        // this batch's longest window
    mutable int64_t reserved_rows_ = 0;
    mutable std::vector<gpu::buffer<float>> buffers_;  // one per value
    mutable gpu::buffer<float> quantized_, col_, rotated_;
};

}  // namespace

std::unique_ptr<runner> make_cuda_runner(const model& m, int ordinal) { return std::make_unique<cuda_runner>(m, ordinal); }

}  // namespace shrink
