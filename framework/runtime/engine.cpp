#include "runtime/engine.hpp"

#include "cpu/gemv.hpp"
#include "cpu/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

namespace shrink {

namespace {
// Up to this many rows a linear layer is a few matrix-vector products (cpu/gemv.hpp);
// from there oneDNN's blocked matmul wins (measured with bench/bench_runtime).
constexpr int64_t gemv_max_rows = 4;
}  // namespace

struct engine::batch_plan {
    std::vector<cpu::linear_kernel> kernels;  // one per linear step, in step order
    std::vector<std::vector<float>> slots;    // activation buffers (slot 0 unused: the input is read in place)
};

engine::engine(const model& m) {
    m.validate();
    std::map<std::string, int> slot{{m.input, 0}};
    std::map<std::string, int> consumers;
    for (const layer& l : m.layers) ++consumers[l.input];
    slot_width_.push_back(m.input_features);
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const layer& l = m.layers[i];
        step s;
        s.source = &l;
        s.input_slot = slot.at(l.input);
        s.in = slot_width_[size_t(s.input_slot)];
        if (l.op == "linear") {
            s.op = 0;
            const tensor& w = m.at(l.weight);
            s.weight = w.decode();
            s.out = w.shape[0];
            if (!l.bias.empty()) s.bias = m.at(l.bias).decode();
            // A relu that is this linear's only consumer runs inside the matmul (a oneDNN
            // post-op): one pass over the activations instead of two.
            if (i + 1 < m.layers.size() && m.layers[i + 1].op == "relu" && m.layers[i + 1].input == l.output &&
                consumers[l.output] == 1 && l.output != m.output) {
                s.fused_relu = true;
                s.output_slot = int(slot_width_.size());
                slot[m.layers[i + 1].output] = s.output_slot;
                slot_width_.push_back(s.out);
                steps_.push_back(std::move(s));
                ++i;
                continue;
            }
        } else {
            s.op = l.op == "relu" ? 1 : 2;
            s.out = s.in;
        }
        s.output_slot = static_cast<int>(slot_width_.size());
        slot[l.output] = s.output_slot;
        slot_width_.push_back(s.out);
        steps_.push_back(std::move(s));
    }
    output_slot_ = slot.at(m.output);
    output_width_ = slot_width_[size_t(output_slot_)];
}

engine::~engine() = default;

engine::batch_plan& engine::plan_for(int64_t rows) const {
    auto& p = plans_[rows];
    if (p) return *p;
    p = std::make_unique<batch_plan>();
    if (rows > gemv_max_rows)
        for (const step& s : steps_)
            if (s.op == 0)
                p->kernels.emplace_back(rows, s.out, s.in, s.weight.data(), s.bias.empty() ? nullptr : s.bias.data(), s.fused_relu);
    p->slots.resize(slot_width_.size());
    for (size_t i = 1; i < slot_width_.size(); ++i) p->slots[i].resize(size_t(rows * slot_width_[i]));
    return *p;
}

std::vector<float> engine::run(const float* input, int64_t rows, const layer_input_fn& on_layer_input) const {
    batch_plan& plan = plan_for(rows);
    auto data_of = [&](int slot) -> const float* { return slot == 0 ? input : plan.slots[size_t(slot)].data(); };
    size_t kernel = 0;
    std::vector<float> quantized_input;
    for (const step& s : steps_) {
        const float* src = data_of(s.input_slot);
        float* dst = plan.slots[size_t(s.output_slot)].data();
        const int64_t n = rows * s.in;
        if (s.op == 0) {
            if (const auto& iq = s.source->input_quantization) {
                // Static activation quantization, simulated: the values become exactly
                // what an 8-bit asymmetric input would carry.
                quantized_input.assign(src, src + n);
                for (float& x : quantized_input) {
                    const float q = std::clamp(std::nearbyint(x / iq->scale) + float(iq->zero_point), 0.0f, 255.0f);
                    x = (q - float(iq->zero_point)) * iq->scale;
                }
                src = quantized_input.data();
            }
            if (on_layer_input) on_layer_input(s.source->name, src, rows, s.in);
            const float* bias = s.bias.empty() ? nullptr : s.bias.data();
            if (rows <= gemv_max_rows) cpu::gemv_rows(src, rows, s.weight.data(), bias, dst, s.out, s.in, s.fused_relu);
            else plan.kernels[kernel].run(src, dst);
            ++kernel;
        } else if (s.op == 1) {
            for (int64_t i = 0; i < n; ++i) dst[i] = src[i] > 0 ? src[i] : 0.0f;
        } else {
            for (int64_t r = 0; r < rows; ++r) {
                const float* x = src + r * s.in;
                float* y = dst + r * s.in;
                const float top = *std::max_element(x, x + s.in);
                float sum = 0;
                for (int64_t j = 0; j < s.in; ++j) sum += (y[j] = std::exp(x[j] - top));
                const float inv = 1.0f / sum;
                for (int64_t j = 0; j < s.in; ++j) y[j] *= inv;
            }
        }
    }
    if (output_slot_ == 0) return std::vector<float>(input, input + rows * output_width_);
    const std::vector<float>& out = plan.slots[size_t(output_slot_)];
    return std::vector<float>(out.begin(), out.begin() + rows * output_width_);
}

}  // namespace shrink
