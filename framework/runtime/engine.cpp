#include "runtime/engine.hpp"

#include "cpu/conv.hpp"
#include "cpu/gemv.hpp"
#include "cpu/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace shrink {

namespace {
// Up to this many rows a linear layer is a few matrix-vector products (cpu/gemv.hpp);
// from there oneDNN's blocked matmul wins (measured with bench/bench_runtime).
constexpr int64_t gemv_max_rows = 4;

int64_t volume(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

cpu::window_shape window_of(const std::vector<int64_t>& in, const std::vector<int64_t>& out, const window& w, int64_t rows) {
    cpu::window_shape s;
    s.batch = rows;
    s.in_c = in[0], s.in_h = in[1], s.in_w = in[2];
    s.out_c = out[0], s.out_h = out[1], s.out_w = out[2];
    s.kernel = w.kernel;
    s.strides = w.strides;
    s.pads = w.pads;
    s.dilations = w.dilations;
    s.group = w.group;
    return s;
}

}  // namespace

struct engine::batch_plan {
    std::vector<std::function<void(const float*, float*)>> run;  // one per step
    std::vector<std::vector<float>> buffers;
};

engine::engine(const model& m) {
    m.validate();
    const auto shapes = m.activation_shapes();
    std::map<std::string, int> consumers;
    for (const layer& l : m.layers) ++consumers[l.input];
    std::map<std::string, int> value{{m.input, 0}};
    std::vector<int64_t> value_floats{m.input_features};
    auto new_value = [&](const std::string& name) {
        value[name] = int(value_floats.size());
        value_floats.push_back(volume(shapes.at(name)));
        return value[name];
    };
    // Layer j can be absorbed into the step that produced `produced`: it is the only
    // reader, and nobody needs the value in between.
    auto absorbable = [&](size_t j, const std::string& produced) {
        return j < m.layers.size() && m.layers[j].input == produced && consumers[produced] == 1 && produced != m.output;
    };

    for (size_t i = 0; i < m.layers.size(); ++i) {
        const layer& l = m.layers[i];
        if (l.op == "flatten") {  // NCHW data is already flat: a view
            value[l.output] = value.at(l.input);
            continue;
        }
        step s;
        s.source = &l;
        s.input = value.at(l.input);
        s.in_shape = shapes.at(l.input);
        s.in_size = volume(s.in_shape);
        std::string produced = l.output;
        if (l.op == "linear" || l.op == "conv") {
            s.k = l.op == "linear" ? kind::linear : kind::conv;
            s.weight = m.at(l.weight).decode();
            const int64_t out_channels = m.at(l.weight).shape[0];
            s.bias = l.bias.empty() ? std::vector<float>(size_t(out_channels), 0.0f) : m.at(l.bias).decode();
            if (s.k == kind::conv && absorbable(i + 1, produced) && m.layers[i + 1].op == "batchnorm") {
                // conv then batchnorm is one conv: scale each output channel's weights and bias.
                const layer& bn = m.layers[++i];
                const std::vector<float> scale = m.at(bn.weight).decode(), shift = m.at(bn.bias).decode();
                const size_t per_channel = s.weight.size() / size_t(out_channels);
                for (size_t o = 0; o < size_t(out_channels); ++o) {
                    for (size_t k = 0; k < per_channel; ++k) s.weight[o * per_channel + k] *= scale[o];
                    s.bias[o] = s.bias[o] * scale[o] + shift[o];
                }
                s.folded.push_back(bn.name);
                produced = bn.output;
            }
            if (absorbable(i + 1, produced) && cpu::is_activation(m.layers[i + 1].op) &&
                (s.k == kind::conv || m.layers[i + 1].op == "relu")) {
                const layer& f = m.layers[++i];
                s.post = cpu::activation{f.op, f.alpha, f.beta};
                s.folded.push_back(f.name);
                produced = f.output;
            }
        } else if (cpu::is_activation(l.op)) {
            s.k = kind::activation;
            s.post = cpu::activation{l.op, l.alpha, l.beta};
        } else if (l.op == "softmax" || l.op == "log_softmax") {
            s.k = l.op == "softmax" ? kind::softmax : kind::log_softmax;
        } else if (l.op == "batchnorm") {
            s.k = kind::batchnorm;
            s.weight = m.at(l.weight).decode();
            s.bias = m.at(l.bias).decode();
        } else {  // max_pool, avg_pool, global_avg_pool
            s.k = kind::pool;
        }
        s.output = new_value(produced);
        s.out_shape = shapes.at(produced);
        s.out_size = volume(s.out_shape);
        steps_.push_back(std::move(s));
    }
    output_value_ = value.at(m.output);
    output_width_ = value_floats[size_t(output_value_)];
    for (size_t v = 1; v < value_floats.size(); ++v) unplanned_floats_ += value_floats[v];

    // The memory plan: a value's buffer is free again after the last step that reads it.
    std::vector<size_t> last_read(value_floats.size(), 0);
    for (size_t k = 0; k < steps_.size(); ++k) last_read[size_t(steps_[k].input)] = k;
    last_read[size_t(output_value_)] = std::numeric_limits<size_t>::max();
    buffer_of_.assign(value_floats.size(), -1);
    std::vector<int> free_buffers;
    for (size_t k = 0; k < steps_.size(); ++k) {
        const step& s = steps_[k];
        const bool in_place = (s.k == kind::activation || s.k == kind::batchnorm || s.k == kind::softmax || s.k == kind::log_softmax) &&
                              s.input != 0 && last_read[size_t(s.input)] == k;
        int buffer = -1;
        if (in_place) {
            buffer = buffer_of_[size_t(s.input)];
        } else if (!free_buffers.empty()) {
            // The smallest free buffer that holds the value, else the largest (grown).
            auto best = free_buffers.end();
            for (auto it = free_buffers.begin(); it != free_buffers.end(); ++it) {
                const int64_t have = buffer_floats_[size_t(*it)], best_have = best == free_buffers.end() ? -1 : buffer_floats_[size_t(*best)];
                const bool fits = have >= s.out_size, best_fits = best_have >= s.out_size;
                if (best == free_buffers.end() || (fits && (!best_fits || have < best_have)) || (!fits && !best_fits && have > best_have)) best = it;
            }
            buffer = *best;
            free_buffers.erase(best);
            buffer_floats_[size_t(buffer)] = std::max(buffer_floats_[size_t(buffer)], s.out_size);
        } else {
            buffer = int(buffer_floats_.size());
            buffer_floats_.push_back(s.out_size);
        }
        buffer_of_[size_t(s.output)] = buffer;
        if (!in_place && s.input != 0 && last_read[size_t(s.input)] == k) free_buffers.push_back(buffer_of_[size_t(s.input)]);
    }
}

engine::~engine() = default;

int64_t engine::planned_floats() const {
    int64_t n = 0;
    for (int64_t f : buffer_floats_) n += f;
    return n;
}

std::vector<std::string> engine::step_summary() const {
    std::vector<std::string> out;
    for (const step& s : steps_) {
        std::string line = s.source->op;
        for (const std::string& f : s.folded) line.append("+").append(f);
        out.push_back(s.source->name + ": " + line);
    }
    return out;
}

engine::batch_plan& engine::plan_for(int64_t rows) const {
    auto& p = plans_[rows];
    if (p) return *p;
    p = std::make_unique<batch_plan>();
    for (const step& s : steps_) {
        const layer& l = *s.source;
        switch (s.k) {
            case kind::linear: {
                const bool relu = bool(s.post);
                const int64_t out = s.out_size, in = s.in_size;
                if (rows <= gemv_max_rows) {
                    p->run.push_back([&s, rows, relu, out, in](const float* src, float* dst) {
                        cpu::gemv_rows(src, rows, s.weight.data(), s.bias.data(), dst, out, in, relu);
                    });
                } else {
                    auto k = std::make_shared<cpu::linear_kernel>(rows, out, in, s.weight.data(), s.bias.data(), relu);
                    p->run.push_back([k](const float* src, float* dst) { k->run(src, dst); });
                }
                break;
            }
            case kind::conv: {
                auto k = std::make_shared<cpu::conv_kernel>(window_of(s.in_shape, s.out_shape, l.win, rows), s.weight.data(),
                                                            s.bias.data(), s.post);
                p->run.push_back([k](const float* src, float* dst) { k->run(src, dst); });
                break;
            }
            case kind::pool: {
                window w = l.win;
                cpu::pooling how = l.op == "max_pool" ? cpu::pooling::max
                                   : w.count_include_pad ? cpu::pooling::average_with_pad
                                                         : cpu::pooling::average;
                if (l.op == "global_avg_pool") {
                    w = window{};
                    w.kernel = {s.in_shape[1], s.in_shape[2]};
                    how = cpu::pooling::average;
                }
                auto k = std::make_shared<cpu::pool_kernel>(window_of(s.in_shape, s.out_shape, w, rows), how);
                p->run.push_back([k](const float* src, float* dst) { k->run(src, dst); });
                break;
            }
            case kind::activation: {
                auto k = std::make_shared<cpu::eltwise_kernel>(rows * s.in_size, s.post);
                p->run.push_back([k](const float* src, float* dst) { k->run(src, dst); });
                break;
            }
            case kind::batchnorm: {
                const int64_t channels = s.in_shape[0], inner = s.in_size / channels;
                p->run.push_back([&s, rows, channels, inner](const float* src, float* dst) {
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t c = 0; c < channels; ++c) {
                            const float a = s.weight[size_t(c)], b = s.bias[size_t(c)];
                            const int64_t at = (r * channels + c) * inner;
                            for (int64_t i = 0; i < inner; ++i) dst[at + i] = src[at + i] * a + b;
                        }
                });
                break;
            }
            case kind::softmax:
            case kind::log_softmax: {
                const bool log = s.k == kind::log_softmax;
                const int64_t width = s.in_size;
                p->run.push_back([rows, width, log](const float* src, float* dst) {
                    for (int64_t r = 0; r < rows; ++r) {
                        const float* x = src + r * width;
                        float* y = dst + r * width;
                        const float top = *std::max_element(x, x + width);
                        float sum = 0;
                        for (int64_t j = 0; j < width; ++j) sum += std::exp(x[j] - top);
                        if (log) {
                            const float shift = top + std::log(sum);
                            for (int64_t j = 0; j < width; ++j) y[j] = x[j] - shift;
                        } else {
                            const float inv = 1.0f / sum;
                            for (int64_t j = 0; j < width; ++j) y[j] = std::exp(x[j] - top) * inv;
                        }
                    }
                });
                break;
            }
        }
    }
    p->buffers.resize(buffer_floats_.size());
    for (size_t b = 0; b < buffer_floats_.size(); ++b) p->buffers[b].resize(size_t(rows * buffer_floats_[b]));
    return *p;
}

std::vector<float> engine::run(const float* input, int64_t rows, const layer_input_fn& on_layer_input) const {
    batch_plan& plan = plan_for(rows);
    auto data_of = [&](int v) -> float* {
        const int b = buffer_of_[size_t(v)];
        return b < 0 ? const_cast<float*>(input) : plan.buffers[size_t(b)].data();
    };
    std::vector<float> quantized_input;
    for (size_t k = 0; k < steps_.size(); ++k) {
        const step& s = steps_[k];
        const float* src = data_of(s.input);
        if (s.k == kind::linear || s.k == kind::conv) {
            if (const auto& iq = s.source->input_quantization) {
                // Static activation quantization, simulated: the values become exactly
                // what an 8-bit asymmetric input would carry.
                quantized_input.assign(src, src + rows * s.in_size);
                for (float& x : quantized_input) {
                    const float q = std::clamp(std::nearbyint(x / iq->scale) + float(iq->zero_point), 0.0f, 255.0f);
                    x = (q - float(iq->zero_point)) * iq->scale;
                }
                src = quantized_input.data();
            }
            if (on_layer_input) on_layer_input(s.source->name, src, rows, s.in_size);
        }
        plan.run[k](src, data_of(s.output));
    }
    const float* out = data_of(output_value_);
    return std::vector<float>(out, out + rows * output_width_);
}

}  // namespace shrink
