// distiller.kd: knowledge distillation (Hinton et al., 2015). The current model is the
// teacher; a student with the same graph and width_scale of each hidden layer's width
// learns from the teacher's softened outputs and the labels:
//   alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE.
// Optionally the outputs of named layers are matched too (mean squared difference), where
// student and teacher have the same width there. After it the pipeline works on the
// student; the teacher is kept for later stages' distillation losses.
#include <shrink/plugin.hpp>
#include <shrink/training.hpp>

#include <algorithm>
#include <string>

namespace {

void run(shrink::stage_context& ctx) {
    const shrink::params& p = ctx.params();
    shrink::model& m = ctx.model();
    shrink::training t = shrink::training_of(p);
    t.batch_statistics = true;  // the student starts from fresh weights
    for (const std::string& name : p.layers("match_layers"))
        t.hidden_pairs.append(t.hidden_pairs.empty() ? "" : ",").append(name + ":" + name);
    t.hidden_weight = p.real("match_weight");
    const uint64_t teacher_bytes = m.size_bytes();
    m.make_student(p.real("width_scale"));
    const shrink::train_report r = m.train(t);
    shrink::report_training(ctx, r);
    ctx.result("teacher_size_bytes", double(teacher_bytes));
    ctx.result("student_size_bytes", double(m.size_bytes()));
    ctx.log("student at width " + std::to_string(p.real("width_scale")) + ": loss " + std::to_string(r.first_epoch_loss) +
            " -> " + std::to_string(r.last_epoch_loss) + " over " + std::to_string(r.steps) + " steps");
}

// A prior until the ledger measures it: a narrower student loses more as its capacity
// falls (a quarter-width student of the reference MLP, 3 epochs, loses about 3.5%).
double expected_drop(const shrink::params& p) {
    return std::min(0.5, 0.01 * (1.0 / p.real("width_scale") - 1.0));
}

shrink::plugin make_plugin() {
    shrink::plugin pl("shrink-distiller-kd", "0.1.0");
    std::vector<shrink::param> params = shrink::training_params({.epochs = 5,
                                                                 .optimizer = "adamw",
                                                                 .learning_rate = 2e-3,
                                                                 .schedule = "cosine",
                                                                 .weight_decay = 0,
                                                                 .distill_alpha = 0.9,
                                                                 .temperature = 4});
    params.push_back(shrink::param::layers("match_layers",
                                           "also match these layers' outputs to the teacher's (same width needed); default none"));
    params.push_back(shrink::param::real("width_scale", "0.5", 0.01, 1, "the student keeps this fraction of every hidden layer's width"));
    params.push_back(shrink::param::real("match_weight", "1", 0, 1000, "weight of each matched layer's mean squared difference"));
    pl.add({.name = "distiller.kd",
            .doc = "knowledge distillation into a narrower student of the current model (the teacher)",
            .params = std::move(params),
            .facts = {shrink::fact::requires_("teacher"), shrink::fact::requires_("training_data")},
            .devices = SHRINK_DEVICE_CPU,
            .expected_drop = expected_drop,
            .run = run,
            .resources = SHRINK_RESOURCE_TRAINING_STATE | SHRINK_RESOURCE_FORWARD,
            .time_class = SHRINK_TIME_TRAINING});
    return pl;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)
