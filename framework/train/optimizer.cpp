#include "train/optimizer.hpp"

#include "train/parallel.hpp"

#include <cmath>
#include <stdexcept>

namespace shrink::train {

double scheduled_rate(const optimizer_options& o, int64_t step, int64_t total, int64_t per_epoch) {
    if (o.schedule == "cosine")
        return o.learning_rate * 0.5 * (1 + std::cos(M_PI * double(step) / double(std::max<int64_t>(total, 1))));
    if (o.schedule == "step") {
        const int64_t epoch = per_epoch > 0 ? step / per_epoch : 0;
        return o.learning_rate * std::pow(o.step_gamma, double(epoch / std::max<int64_t>(o.step_epochs, 1)));
    }
    return o.learning_rate;
}

void check(const optimizer_options& o) {
    if (o.kind != "sgd" && o.kind != "adamw") throw std::invalid_argument("optimizer '" + o.kind + "' is not sgd or adamw");
    if (o.schedule != "constant" && o.schedule != "cosine" && o.schedule != "step")
        throw std::invalid_argument("schedule '" + o.schedule + "' is not constant, cosine or step");
    if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate)) throw std::invalid_argument("learning_rate must be positive");
    if (!(o.momentum >= 0 && o.momentum < 1)) throw std::invalid_argument("momentum must be in [0, 1)");
    if (!(o.weight_decay >= 0)) throw std::invalid_argument("weight_decay must not be negative");
    if (o.step_epochs < 1 || !(o.step_gamma > 0 && o.step_gamma <= 1))
        throw std::invalid_argument("step schedule needs step_epochs >= 1 and 0 < step_gamma <= 1");
}

void optimizer::step(std::vector<parameter<float>>& params, double rate) {
    if (m_.empty()) {
        m_.resize(params.size());
        v_.resize(params.size());
        for (size_t i = 0; i < params.size(); ++i) {
            m_[i].assign(params[i].value.size(), 0.0f);
            if (o_.kind == "adamw") v_[i].assign(params[i].value.size(), 0.0f);
        }
    }
    ++steps_;
    const bool sgd = o_.kind == "sgd";
    const double c1 = 1 - std::pow(o_.beta1, double(steps_)), c2 = 1 - std::pow(o_.beta2, double(steps_));
    for (size_t k = 0; k < params.size(); ++k) {
        parameter<float>& p = params[k];
        if (p.frozen) continue;
        const double decay = p.decays ? o_.weight_decay : 0.0;
        float* m = m_[k].data();
        float* v = v_[k].data();
        each_element(int64_t(p.value.size()), [&](int64_t j) {
            const size_t i = size_t(j);
            float& w = p.value[i];
            if (sgd) {
                const double g = double(p.grad[i]) + decay * w;
                m[i] = float(o_.momentum * m[i] + g);
                w -= float(rate * m[i]);
            } else {
                const double g = p.grad[i];
                m[i] = float(o_.beta1 * m[i] + (1 - o_.beta1) * g);
                v[i] = float(o_.beta2 * v[i] + (1 - o_.beta2) * g * g);
                w -= float(rate * decay * w);
                w -= float(rate * (m[i] / c1) / (std::sqrt(v[i] / c2) + o_.epsilon));
            }
            if (!p.mask.empty() && !p.mask[i]) w = 0.0f;
        });
    }
}

}  // namespace shrink::train
