#include "train/fit.hpp"

#include "train/loss.hpp"
#include "util/random.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <stdexcept>

namespace shrink::train {

fit_result fit(model& m, const sample_source& data, const fit_options& o) {
    if (o.epochs < 1 || o.batch < 1) throw std::invalid_argument("training needs at least one epoch and a batch of at least 1");
    if (!(o.alpha >= 0 && o.alpha <= 1)) throw std::invalid_argument("the distillation weight alpha must be in [0, 1]");
    if (!(o.temperature > 0)) throw std::invalid_argument("the distillation temperature must be positive");
    if ((o.alpha > 0 || !o.hidden_pairs.empty()) && !o.teacher)
        throw std::invalid_argument("distillation needs a teacher model");
    const int64_t n = o.max_samples > 0 ? std::min(o.max_samples, data.count) : data.count;
    if (n < 1) throw std::invalid_argument("the training data has no samples");

    net<float> student(m, o.net);
    std::optional<net<float>> teacher;
    const std::string& logits = student.logits();
    const int64_t classes = student.width(logits);
    if (o.teacher) {
        teacher.emplace(*o.teacher, net_options{});
        if (teacher->width(teacher->logits()) != classes)
            throw std::invalid_argument("the teacher has " + std::to_string(teacher->width(teacher->logits())) +
                                        " outputs, the student " + std::to_string(classes));
        if (o.teacher->input_features != m.input_features)
            throw std::invalid_argument("the teacher takes " + std::to_string(o.teacher->input_features) +
                                        " inputs, the student " + std::to_string(m.input_features));
    }
    for (const auto& [s, t] : o.hidden_pairs) {
        if (student.width(s) != teacher->width(t))
            throw std::invalid_argument("hidden pair '" + s + ":" + t + "': the student's value has " +
                                        std::to_string(student.width(s)) + " floats per sample, the teacher's " +
                                        std::to_string(teacher->width(t)));
    }

    optimizer opt(o.optimizer);
    const int64_t per_epoch = (n + o.batch - 1) / o.batch, total = per_epoch * o.epochs;
    std::vector<int64_t> order(static_cast<size_t>(n));
    const int64_t per = std::max<int64_t>(1, data.rows_per_sample);
    std::vector<float> x(size_t(o.batch * per * m.input_features));
    std::vector<int32_t> labels(size_t(o.batch * per));
    fit_result result;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        std::iota(order.begin(), order.end(), 0);
        rng(derive_seed(o.seed, "epoch:" + std::to_string(epoch))).shuffle(order.begin(), order.end());
        double loss_sum = 0;
        int64_t labelled = 0;
        for (int64_t start = 0; start < n; start += o.batch) {
            const int64_t samples = std::min(o.batch, n - start), rows = samples * per;
            data.fill(order.data() + start, samples, x.data(), labels.data());
            if (o.before_forward) o.before_forward(student.parameters());
            student.forward(x.data(), rows, true);
            std::vector<float>& g = student.grad(logits);
            const float* z = student.value(logits).data();
            double loss = 0;
            if (o.alpha < 1) loss += (1 - o.alpha) * cross_entropy(z, labels.data(), rows, classes, 1 - o.alpha, g.data());
            if (teacher) {
                teacher->forward(x.data(), rows, false);
                if (o.alpha > 0)
                    loss += o.alpha * distillation(z, teacher->value(teacher->logits()).data(), rows, classes, o.temperature,
                                                   o.alpha, g.data());
                for (const auto& [s, t] : o.hidden_pairs)
                    loss += o.hidden_weight * mean_squared(student.value(s).data(), teacher->value(t).data(), rows,
                                                           student.width(s), o.hidden_weight, student.grad(s).data());
            }
            if (!std::isfinite(loss))
                throw std::runtime_error("training diverged at epoch " + std::to_string(epoch + 1) +
                                         " (the loss is not finite); lower the learning rate");
            loss_sum += loss;
            int64_t batch_labelled = 0;
            for (int64_t r = 0; r < rows; ++r) batch_labelled += labels[size_t(r)] >= 0;
            labelled += batch_labelled;
            student.zero_grad();
            student.backward();
            opt.step(student.parameters(), scheduled_rate(o.optimizer, result.steps, total, per_epoch));
            ++result.steps;
            if (o.on_step) o.on_step(result.steps, loss / double(std::max<int64_t>(batch_labelled, 1)));
        }
        result.epoch_loss.push_back(loss_sum / double(std::max<int64_t>(labelled, 1)));
        if (o.on_epoch) o.on_epoch(epoch + 1, result.epoch_loss.back());
    }
    student.write_to(m);
    return result;
}

}  // namespace shrink::train
