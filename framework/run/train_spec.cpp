#include "run/train_spec.hpp"

#include "util/text.hpp"

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace shrink {

train::fit_options fit_options_of(const shrink_train_spec& spec, const model& m, const model* teacher, uint64_t seed) {
    train::fit_options f;
    f.epochs = spec.epochs;
    f.batch = int64_t(spec.batch);
    f.max_samples = int64_t(spec.max_samples);
    f.seed = seed;
    if (spec.optimizer != SHRINK_OPTIMIZER_SGD && spec.optimizer != SHRINK_OPTIMIZER_ADAMW)
        throw std::invalid_argument("unknown optimizer " + std::to_string(spec.optimizer));
    f.optimizer.kind = spec.optimizer == SHRINK_OPTIMIZER_SGD ? "sgd" : "adamw";
    f.optimizer.learning_rate = spec.learning_rate;
    f.optimizer.momentum = spec.momentum;
    f.optimizer.weight_decay = spec.weight_decay;
    const int32_t sched = spec.schedule;
    if (sched != SHRINK_SCHEDULE_CONSTANT && sched != SHRINK_SCHEDULE_COSINE && sched != SHRINK_SCHEDULE_STEP)
        throw std::invalid_argument("unknown schedule " + std::to_string(sched));
    f.optimizer.schedule = sched == SHRINK_SCHEDULE_CONSTANT ? "constant" : sched == SHRINK_SCHEDULE_COSINE ? "cosine" : "step";
    f.optimizer.step_epochs = spec.step_epochs;
    f.optimizer.step_gamma = spec.step_gamma;
    f.alpha = spec.distill_alpha;
    f.temperature = spec.temperature;
    f.hidden_weight = spec.hidden_weight;
    // A layer's name stands for its output.
    auto value_of = [](const model* net, const std::string& name) {
        const layer* l = net ? net->find_layer(name) : nullptr;
        return l ? l->output : name;
    };
    if (spec.hidden_pairs)
        for (const std::string& pair : split(spec.hidden_pairs, ',')) {
            if (pair.empty()) continue;
            const size_t colon = pair.find(':');
            if (colon == std::string::npos) throw std::invalid_argument("hidden pair '" + pair + "' is not student:teacher");
            f.hidden_pairs.emplace_back(value_of(&m, pair.substr(0, colon)), value_of(teacher, pair.substr(colon + 1)));
        }
    if (f.alpha > 0 || !f.hidden_pairs.empty()) {
        if (!teacher) throw std::invalid_argument("distillation needs a teacher, and this model state keeps none");
        f.teacher = teacher;
    }
    f.net.batch_statistics = spec.batch_statistics != 0;
    std::set<std::string> transformed;
    if (spec.transform_tensors)
        for (const std::string& name : split(spec.transform_tensors, ','))
            if (!name.empty()) {
                const tensor& t = m.at(name);  // throws naming an unknown tensor
                if (t.quant) throw std::invalid_argument("tensor '" + name + "' is already quantized");
                transformed.insert(name);
            }
    if (!transformed.empty() && !spec.transform) throw std::invalid_argument("transform_tensors given without a transform");
    if (!transformed.empty())
        f.before_forward = [spec, transformed](std::vector<train::parameter<float>>& params) {
            for (train::parameter<float>& p : params) {
                if (!transformed.count(p.tensor)) continue;
                p.effective.resize(p.value.size());
                shrink_error inner{};
                if (spec.transform(spec.transform_user, p.tensor.c_str(), p.value.data(), p.effective.data(),
                                    tensor::matrix_rows(p.shape), tensor::matrix_cols(p.shape), &inner) != SHRINK_OK)
                    throw std::runtime_error(std::string("the weight transform failed on '") + p.tensor + "': " + inner.message);
                for (float v : p.effective)
                    if (!std::isfinite(v)) throw std::runtime_error("the weight transform made a non-finite value in '" + p.tensor + "'");
            }
        };
    return f;
}

}  // namespace shrink
