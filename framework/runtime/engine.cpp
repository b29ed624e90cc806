#include "runtime/engine.hpp"

#include "cpu/matmul.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace shrink {

engine::engine(const model& m) : model_(m) {
    m.validate();
    std::map<std::string, int> slot{{m.input, 0}};
    slot_width_.push_back(m.input_features);
    for (const layer& l : m.layers) {
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

std::vector<float> engine::run(const float* input, int64_t rows, const layer_input_fn& on_layer_input) const {
    std::vector<std::vector<float>> slots(slot_width_.size());
    slots[0].assign(input, input + rows * slot_width_[0]);
    for (const step& s : steps_) {
        std::vector<float>& src = slots[size_t(s.input_slot)];
        std::vector<float>& dst = slots[size_t(s.output_slot)];
        dst.resize(size_t(rows * s.out));
        if (s.op == 0) {
            if (const auto& iq = s.source->input_quantization) {
                // Static activation quantization, simulated: the values become exactly
                // what an 8-bit asymmetric input would carry.
                for (float& x : src) {
                    const float q = std::clamp(std::nearbyint(x / iq->scale) + float(iq->zero_point), 0.0f, 255.0f);
                    x = (q - float(iq->zero_point)) * iq->scale;
                }
            }
            if (on_layer_input) on_layer_input(s.source->name, src.data(), rows, s.in);
            cpu::matmul(src.data(), false, s.weight.data(), true, dst.data(), rows, s.out, s.in,
                        s.bias.empty() ? nullptr : s.bias.data());
        } else if (s.op == 1) {
            tbb::parallel_for(tbb::blocked_range<size_t>(0, src.size(), 16384), [&](const tbb::blocked_range<size_t>& r) {
                for (size_t i = r.begin(); i < r.end(); ++i) dst[i] = src[i] > 0 ? src[i] : 0.0f;
            });
        } else {
            tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, 64), [&](const tbb::blocked_range<int64_t>& rr) {
                for (int64_t r = rr.begin(); r < rr.end(); ++r) {
                    const float* x = src.data() + r * s.in;
                    float* y = dst.data() + r * s.in;
                    const float top = *std::max_element(x, x + s.in);
                    double sum = 0;
                    for (int64_t j = 0; j < s.in; ++j) sum += (y[j] = std::exp(x[j] - top));
                    for (int64_t j = 0; j < s.in; ++j) y[j] = float(y[j] / sum);
                }
            });
        }
    }
    return std::move(slots[size_t(output_slot_)]);
}

}  // namespace shrink
